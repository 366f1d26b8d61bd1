"""Issue 18: the transparency report counts people whose data was disclosed, not identifiers named."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone

from click.testing import CliRunner

from warden.cli.main import cli

from bench.legal import start_at_the_end
from tests.support.kafka import topic_ends, wait_for_events
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.disclosure.test_disclosure_pipeline import account, ago, new_phone, session, stored
from tests.integration.legal_review.support import publish_received, received, registered


def report(database_url: str, quarter: str) -> dict:
    result = CliRunner().invoke(cli, ["transparency", "--quarter", quarter, "--format", "json",
                                      "--database-url", database_url])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_one_account_named_three_ways_and_one_that_does_not_exist_affect_one_user(bootstrap, database_url):
    # Malta: no other test sends requests from there, so the row is this test's alone.
    court = new_authority("court", "MT")
    # The session's broker holds every earlier test's requests: the services start after them, and the statuses
    # are read from where the topic ends now (reading all of it again each poll grows with the session).
    reviewing, disclosing = service_settings(bootstrap, database_url), service_settings(bootstrap, database_url)
    await start_at_the_end(bootstrap, reviewing.group_prefix, ("legal-review",))
    await start_at_the_end(bootstrap, disclosing.group_prefix, ("disclosure",))
    since = await topic_ends(bootstrap, "legal.requests.status")
    suspect, phone, username = f"acct-{uuid.uuid4().hex[:10]}", new_phone(), f"user_{uuid.uuid4().hex[:8]}"
    await account(bootstrap, suspect, phone, ago(100), username=username)
    await session(bootstrap, suspect, "198.51.100.12", ago(5))
    orders = [received(court, suspect=named) for named in (
        {"account_id": suspect}, {"phone_number": phone}, {"username": username},
        {"account_id": f"acct-{uuid.uuid4().hex[:10]}"})]
    now = datetime.now(timezone.utc)
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    async with running("legal-review", reviewing), running("disclosure", disclosing):
        await registered(bootstrap, database_url, court)
        await stored(database_url, suspect, sessions=1)
        for order in orders:
            await publish_received(bootstrap, order)
        for order in orders:
            await wait_for_events(bootstrap, "legal.requests.status",
                                  lambda e, o=order: e["data"].get("case_id") == o["case_id"]
                                  and e["data"]["status"] in ("disclosed", "no_data"), timeout=60, since=since)
        deadline = time.monotonic() + 20
        while True:  # legal review learns the outcomes from disclosure's events
            row = next((r for r in (await asyncio.to_thread(report, database_url, quarter))["countries"] if r["country"] == "MT"), {})
            if row.get("requests_with_data", 0) + row.get("no_data", 0) >= 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        full = await asyncio.to_thread(report, database_url, quarter)

    assert {k: row[k] for k in ("received", "disclosures_approved", "accounts_specified", "requests_with_data",
                                "no_data", "users_affected", "emergency", "emergency_with_data")} == dict(
        received=4, disclosures_approved=4, accounts_specified=4, requests_with_data=3, no_data=1,
        users_affected=1, emergency=0, emergency_with_data=0)
    by_instrument = [r for r in full["by_instrument"] if r["country"] == "MT"]
    assert [(r["instrument"], r["users_affected"]) for r in by_instrument] == [("court_order", 1)]
