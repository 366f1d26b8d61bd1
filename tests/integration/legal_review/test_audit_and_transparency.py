"""`warden audit verify` catches a tampered row; `warden transparency` counts a seeded quarter exactly."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import datetime, timezone

import asyncpg
import httpx
from click.testing import CliRunner

from warden.cli.main import cli

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import publish_received, received, registered, status_of


async def decide_all(bootstrap: str, database_url: str, authorities, events: list[tuple[dict, str]],
                     settings=None, after=None):
    settings = settings or service_settings(bootstrap, database_url)
    async with running("legal-review", settings):
        await registered(bootstrap, database_url, *authorities)
        for event, _ in events:
            await publish_received(bootstrap, event)
        for event, status in events:
            await status_of(bootstrap, event["case_id"], status)
        if after is not None:
            return await after(settings)


def test_tampered_audit_row_is_named_by_audit_verify(bootstrap, database_url):
    court = new_authority("court", "FR")
    approved, rejected = received(court), received(court, instrument={"type": "subpoena"})
    asyncio.run(decide_all(bootstrap, database_url, [court], [(approved, "approved"), (rejected, "rejected")]))
    runner = CliRunner()

    intact = runner.invoke(cli, ["audit", "verify", "--database-url", database_url, "--bootstrap", bootstrap])
    assert intact.exit_code == 0, intact.output
    assert re.search(r"intact: \d+ entries", intact.output)

    async def tamper() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(
                """UPDATE legal_review.audit_log SET detail = jsonb_set(detail, '{outcome}', '"approved"')
                   WHERE case_id = $1 AND action = 'case.decided' RETURNING seq""", rejected["case_id"])
        finally:
            await conn.close()
    seq = asyncio.run(tamper())

    broken = runner.invoke(cli, ["audit", "verify", "--database-url", database_url, "--bootstrap", bootstrap])
    assert broken.exit_code == 1
    assert f"BROKEN at entry {seq} (case {rejected['case_id']})" in broken.output
    assert "altered" in broken.output


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_transparency_report_of_a_seeded_quarter(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps({"tok": {"reviewer": "sam", "role": "supervisor"}}))
    fr, de, us = new_authority("court", "FR"), new_authority("prosecutor", "DE"), new_authority("court", "US")
    s1 = {"account_id": "acc-s1"}
    events = [
        (received(fr, at("2024-07-10T09:00:00"), suspect=s1), "approved"),
        (received(fr, at("2024-08-01T09:00:00"), suspect=s1), "approved"),  # same user again
        (received(fr, at("2024-09-30T23:00:00")), "approved"),
        (received(fr, at("2024-08-05T09:00:00"), instrument={"expires_at": "2024-08-04T00:00:00+00:00"}), "rejected"),
        (received(fr, at("2024-08-20T09:00:00"), instrument={"type": "preservation_request"}), "approved"),
        (received(fr, at("2024-09-01T09:00:00"), emergency=True, emergency_justification="Hostage"), "pending_review"),
        (received(de, at("2024-07-02T09:00:00"), instrument={"type": "production_order"}), "approved"),
        (received(de, at("2024-08-03T09:00:00"), instrument={"type": "production_order"},
                  offense={"category": "defamation"}), "pending_review"),
        (received(us, at("2024-09-15T09:00:00"), instrument={"type": "preservation_request"}), "approved"),
        (received(us, at("2024-08-08T09:00:00"), instrument={"type": "subpoena"}), "rejected"),
        (received(fr, at("2024-06-30T23:59:59")), "approved"),  # Q2
        (received(fr, at("2024-10-01T00:00:00")), "approved"),  # Q4
    ]

    async def over_http(settings):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            response = await http.get("/review/transparency", params={"quarter": "2024Q3", "format": "csv"},
                                      headers={"Authorization": "Bearer tok"})
            return response.status_code, response.text

    status, http_csv = asyncio.run(decide_all(bootstrap, database_url, [fr, de, us], events, after=over_http))
    result = CliRunner().invoke(cli, ["transparency", "--quarter", "2024Q3", "--format", "json",
                                      "--database-url", database_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_country = {row.pop("country"): row for row in report["countries"]}
    # Disclosure does not run here: nothing is known to be fulfilled, so no user is affected yet
    # (tests/integration/legal_review/test_transparency_people.py has both services).
    unfulfilled = dict(requests_with_data=0, no_data=0, users_affected=0, emergency_with_data=0, withdrawn=0)
    assert by_country == {
        "DE": dict(received=2, approved=1, rejected=0, pending_review=1, disclosures_approved=1,
                   accounts_specified=2, emergency=0, preservation=0, **unfulfilled),
        "FR": dict(received=6, approved=4, rejected=1, pending_review=1, disclosures_approved=3,
                   accounts_specified=5, emergency=1, preservation=1, **unfulfilled),
        "US": dict(received=2, approved=1, rejected=1, pending_review=0, disclosures_approved=0,
                   accounts_specified=2, emergency=0, preservation=1, **unfulfilled),
    }
    assert {(r["country"], r["instrument"]): r["received"] for r in report["by_instrument"]} == {
        ("DE", "production_order"): 2, ("FR", "court_order"): 5, ("FR", "preservation_request"): 1,
        ("US", "preservation_request"): 1, ("US", "subpoena"): 1}
    assert report["totals"]["received"] == 10 and report["quarter"] == "2024Q3"
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(http_csv)))
    assert [(r["country"], r["received"], r["accounts_specified"]) for r in rows if r["instrument"] == "all"] == [
        ("DE", "2", "2"), ("FR", "6", "5"), ("US", "2", "2")]
