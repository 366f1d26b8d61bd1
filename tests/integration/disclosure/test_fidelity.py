"""Issue 18: what disclosure did with approvals the liaison team sent, replayed the way it was found."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from tests.support.kafka import read_topic, wait_for_events
from tests.support.requests import new_authority, register_authority
from tests.support.stack import running, service_settings
from tests.integration.disclosure.test_disclosure_pipeline import (
    account, ago, approve, new_phone, of_case, session, stored,
)
from tests.integration.legal_review.support import publish_received, received, registered, status_of

NOW = datetime.now(timezone.utc)


async def on_topic(bootstrap: str, topic: str, case_id: str) -> list:
    return [r for r in await read_topic(bootstrap, topic) if case_id.encode() in (r.value or b"")]


async def test_a_far_nondisclosure_date_still_discloses_and_schedules_the_notice(bootstrap, database_url):
    authority = new_authority("court", "US")
    await register_authority(bootstrap, authority)
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, new_phone(), ago(100))
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await stored(database_url, suspect)
        decision = await approve(bootstrap, authority, {"account_id": suspect}, nondisclosure_until="9999-12-31")
        [status] = await wait_for_events(bootstrap, "legal.requests.status", of_case(decision["case_id"]))
        conn = await asyncpg.connect(database_url)
        try:
            due_at = await conn.fetchval("SELECT due_at FROM disclosure.notices WHERE case_id = $1",
                                         decision["case_id"])
        finally:
            await conn.close()

    assert status["data"]["status"] == "disclosed"
    assert due_at.year == 9999
    assert await on_topic(bootstrap, "legal.requests.decided.dlq", decision["case_id"]) == []


async def test_an_instrument_expired_when_the_package_is_built_discloses_nothing(bootstrap, database_url):
    authority = new_authority("court", "FR")
    await register_authority(bootstrap, authority)
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, new_phone(), ago(100))
    await session(bootstrap, suspect, "198.51.100.9", ago(5))
    instrument = {"type": "court_order", "reference": "RG 26/0003", "issued_by": "Investigating judge",
                  "issued_at": ago(10).isoformat(), "expires_at": (datetime.now(timezone.utc)
                                                                  - timedelta(seconds=3)).isoformat()}
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await stored(database_url, suspect, sessions=1)
        decision = await approve(bootstrap, authority, {"account_id": suspect}, instrument=instrument)
        [status] = await wait_for_events(bootstrap, "legal.requests.status", of_case(decision["case_id"]))

    assert status["data"]["status"] == "cancelled"
    assert [r["code"] for r in status["data"]["reasons"]] == ["instrument_expired"]
    assert await on_topic(bootstrap, "legal.disclosures.issued", decision["case_id"]) == []


async def test_notice_follows_the_jurisdiction(bootstrap, database_url):
    """EU: the issuing authority informs the person (Art. 13), the platform does not; US: the platform
    notifies at disclosure when no non-disclosure order is served."""
    eu, us = new_authority("court", "FR"), new_authority("court", "US")
    suspects = {name: f"acct-{uuid.uuid4().hex[:10]}" for name in ("eu", "us")}
    for suspect in suspects.values():
        await account(bootstrap, suspect, new_phone(), ago(100))
        await session(bootstrap, suspect, "198.51.100.10", ago(5))
    orders = {"eu": received(eu, suspect={"account_id": suspects["eu"]}),
              "us": received(us, suspect={"account_id": suspects["us"]})}
    async with running("legal-review", service_settings(bootstrap, database_url)), \
            running("disclosure", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, eu, us)
        for suspect in suspects.values():
            await stored(database_url, suspect, sessions=1)
        for order in orders.values():
            await publish_received(bootstrap, order)
        for order in orders.values():
            await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(order["case_id"]))
        [us_notice] = await wait_for_events(bootstrap, "legal.notices.due", of_case(orders["us"]["case_id"]))
        [decided] = await wait_for_events(bootstrap, "legal.requests.decided", of_case(orders["eu"]["case_id"]))
        eu_notices = await on_topic(bootstrap, "legal.notices.due", orders["eu"]["case_id"])

    assert eu_notices == []
    assert us_notice["data"]["account_id"] == suspects["us"]
    notice = decided["data"]["user_notice"]
    assert notice["by"] == "authority" and "Art. 13" in notice["source"]
    assert "notice.jurisdiction" in [r["rule"] for r in decided["data"]["policy_rules"]]


async def test_an_emergency_is_not_notified_before_its_validation_window_ends(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps({"tok-alice": {"reviewer": "alice", "role": "reviewer"}}))
    police = new_authority("police", "US")
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, new_phone(), ago(100))
    await session(bootstrap, suspect, "198.51.100.11", ago(2))
    emergency = received(police, suspect={"account_id": suspect}, instrument={"type": "emergency_request"},
                         emergency=True, emergency_justification="Hostage taking under way")
    review = service_settings(bootstrap, database_url)
    async with running("legal-review", review), running("disclosure", service_settings(bootstrap, database_url)), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{review.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, police)
        await stored(database_url, suspect, sessions=1)
        await publish_received(bootstrap, emergency)
        await status_of(bootstrap, emergency["case_id"], "pending_review")
        answer = await http.post(f"/review/cases/{emergency['case_id']}/decisions",
                                 json={"action": "approve", "reason": "Danger to life"},
                                 headers={"Authorization": "Bearer tok-alice"})
        assert answer.status_code == 200 and answer.json()["closed"] is True
        await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(emergency["case_id"]))
        conn = await asyncpg.connect(database_url)
        try:
            due_at = await conn.fetchval("SELECT due_at FROM disclosure.notices WHERE case_id = $1",
                                         emergency["case_id"])
        finally:
            await conn.close()

    received_at = datetime.fromisoformat(emergency["received_at"])
    assert due_at == received_at + timedelta(hours=48)
    assert await on_topic(bootstrap, "legal.notices.due", emergency["case_id"]) == []
