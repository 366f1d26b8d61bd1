"""Issue 18: the loopholes a liaison team found in legal review, each replayed the way it was found."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from legal_review.jobs import sweep
from warden.runtime.outbox import event_row, write_rows

from tests.support.kafka import wait_for_events
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import (
    decision_of, publish_received, received, registered, status_of,
)

TOKENS = {"tok-alice": {"reviewer": "alice", "role": "reviewer"},
          "tok-bob": {"reviewer": "bob", "role": "reviewer"}}
EMERGENCY = dict(instrument={"type": "emergency_request"}, emergency=True,
                 emergency_justification="Credible threat to kill, tonight")
PRESERVATION = dict(instrument={"type": "preservation_request"})


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def at(event: dict, field: str) -> datetime:
    return datetime.fromisoformat(event["data"][field])


async def decided(bootstrap: str, event: dict) -> dict:
    await publish_received(bootstrap, event)
    return await decision_of(bootstrap, event["case_id"])


async def case_row(database_url: str, case_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow("SELECT * FROM legal_review.cases WHERE case_id = $1", case_id)
    finally:
        await conn.close()


async def test_a_chain_of_extensions_never_holds_past_the_initial_period_plus_one_extension(
        bootstrap, database_url):
    court = new_authority("court", "FR")
    suspect = {"account_id": f"acc-{uuid.uuid4().hex[:8]}"}
    first = received(court, suspect=suspect, **PRESERVATION)
    extension = received(court, suspect=suspect, extends_request_id=first["request"]["request_id"], **PRESERVATION)
    chained = received(court, suspect=suspect, extends_request_id=extension["request"]["request_id"],
                       **PRESERVATION)
    fresh = received(court, suspect=suspect, **PRESERVATION)
    # Nor is an extension that names this hold for someone else's data.
    elsewhere = received(court, suspect={"account_id": f"acc-{uuid.uuid4().hex[:8]}"},
                         extends_request_id=fresh["request"]["request_id"], **PRESERVATION)
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        decisions = [await decided(bootstrap, event) for event in (first, extension, chained, fresh, elsewhere)]

    started = datetime.fromisoformat(first["received_at"])
    limit = started + timedelta(days=60 + 30)  # Art. 11: 60 days, one extension of 30
    assert [d["type"].rsplit(".", 2)[-2] for d in decisions[:2]] == ["approved", "approved"]
    assert at(decisions[1], "hold_until") == limit
    assert decisions[2]["type"] == "warden.legal.request.rejected.v1"
    assert decisions[2]["data"]["reasons"][0]["code"] == "extension_exhausted"
    assert decisions[4]["data"]["reasons"][0]["code"] == "extension_other_suspect"
    # A new request for the same suspect while the hold runs is no way around the limit either.
    holds = [at(d, "hold_until") for d in decisions if d["type"].endswith("approved.v1")]
    assert max(holds) <= limit


async def test_a_confirming_order_confirms_only_the_emergency_it_names(bootstrap, database_url):
    forces = [new_authority("police", "FR") for _ in range(3)]
    court, foreign_court = new_authority("court", "FR"), new_authority("court", "DE")
    shared_id = f"E1-{uuid.uuid4().hex[:6]}"
    suspects = [{"account_id": f"acc-{uuid.uuid4().hex[:8]}"} for _ in range(3)]
    emergencies = [received(force, request_id=shared_id, suspect=suspect, **EMERGENCY)
                   for force, suspect in zip(forces, suspects)]
    confirming = received(court, confirms_request_id=shared_id, suspect=suspects[0])
    # About the third suspect: a speech offense, so the order itself awaits two reviewers.
    pending = received(court, confirms_request_id=shared_id, suspect=suspects[2],
                       offense={"category": "hate_speech", "statute": "Loi 1881 art. 24", "description": "Posts"})
    foreign = received(foreign_court, confirms_request_id=shared_id, suspect=suspects[1])
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, *forces, court, foreign_court)
        for event in emergencies:
            await publish_received(bootstrap, event)
            await status_of(bootstrap, event["case_id"], "pending_review")
        await publish_received(bootstrap, confirming)
        await status_of(bootstrap, confirming["case_id"], "approved")
        await publish_received(bootstrap, pending)
        await status_of(bootstrap, pending["case_id"], "pending_review")
        await publish_received(bootstrap, foreign)
        await status_of(bootstrap, foreign["case_id"], "approved")

    confirmed_by = [(await case_row(database_url, e["case_id"]))["confirmed_by"] for e in emergencies]
    assert [str(c) if c else None for c in confirmed_by] == [confirming["case_id"], None, None]


async def test_an_instrument_that_expires_during_review_is_not_approved(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    police = new_authority("police", "FR")
    now = datetime.now(timezone.utc)
    emergency = received(police, instrument={"type": "emergency_request",
                                             "expires_at": (now + timedelta(seconds=2)).isoformat()},
                         emergency=True, emergency_justification="Credible threat to kill, tonight")
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, police)
        await publish_received(bootstrap, emergency)
        await status_of(bootstrap, emergency["case_id"], "pending_review")
        await asyncio.sleep(max(0.0, (now + timedelta(seconds=3) - datetime.now(timezone.utc)).total_seconds()))
        answer = await http.post(f"/review/cases/{emergency['case_id']}/decisions",
                                 json={"action": "approve", "reason": "Danger established"}, headers=as_("tok-alice"))
        assert answer.status_code == 200 and answer.json()["closed"] is True
        decision = await decision_of(bootstrap, emergency["case_id"])
        status = await status_of(bootstrap, emergency["case_id"], "rejected")

    assert decision["type"] == "warden.legal.request.rejected.v1"
    assert [r["code"] for r in status["data"]["reasons"]] == ["instrument_expired"]


async def test_a_production_order_reaches_data_kept_by_a_hold_beyond_retention(bootstrap, database_url):
    court = new_authority("court", "FR")
    suspect = {"account_id": f"acc-{uuid.uuid4().hex[:8]}"}
    now = datetime.now(timezone.utc)
    hold = received(court, now - timedelta(days=50), suspect=suspect, **PRESERVATION)
    order = received(court, suspect=suspect, period={"start": (now - timedelta(days=400)).isoformat(),
                                                     "end": (now - timedelta(days=380)).isoformat()})
    unheld = received(court, suspect={"account_id": f"acc-{uuid.uuid4().hex[:8]}"}, period=order["request"]["period"])
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        held = await decided(bootstrap, hold)
        production = await decided(bootstrap, order)
        other = await decided(bootstrap, unheld)

    assert held["type"] == "warden.legal.request.approved.v1"
    assert production["type"] == "warden.legal.request.approved.v1"
    assert datetime.fromisoformat(production["data"]["period"]["start"]) == \
        datetime.fromisoformat(order["request"]["period"]["start"])
    assert other["type"] == "warden.legal.request.rejected.v1"
    assert other["data"]["reasons"][0]["code"] == "period_outside_retention"


async def test_a_far_nondisclosure_date_needs_a_reviewer(bootstrap, database_url):
    court = new_authority("court", "US")
    far = received(court, nondisclosure_until="9999-12-31")
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, far)
        status = await status_of(bootstrap, far["case_id"], "pending_review")

    assert "nondisclosure_too_far" in [r["code"] for r in status["data"]["reasons"]]


async def test_a_missed_confirmation_needs_full_review_and_is_told_to_the_authority(
        bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    police = new_authority("police", "FR")
    emergency = received(police, **EMERGENCY)
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, police)
        await publish_received(bootstrap, emergency)
        await status_of(bootstrap, emergency["case_id"], "pending_review")
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "legal_review"})
        try:
            async with conn.transaction():  # as watch_deadlines does, its statuses through the outbox
                swept = await sweep(conn, datetime.now(timezone.utc) + timedelta(hours=49))
                await write_rows(conn, [event_row("legal-review", event) for status in swept.told
                                        for event in (status, status.shared())])
        finally:
            await conn.close()
        told = await wait_for_events(
            bootstrap, "legal.requests.status",
            lambda e: e["data"].get("case_id") == emergency["case_id"]
            and "confirmation_missing" in [r["code"] for r in e["data"]["reasons"]])
        url = f"/review/cases/{emergency['case_id']}/decisions"
        approve = {"action": "approve", "reason": "Danger established"}
        one = await http.post(url, json=approve, headers=as_("tok-alice"))
        two = await http.post(url, json=approve, headers=as_("tok-bob"))

    assert told[0]["data"]["authority_id"] == police["authority_id"]
    assert one.status_code == 200 and one.json()["closed"] is False
    assert two.status_code == 200 and two.json()["closed"] is True


async def test_an_empty_status_lists_every_case(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    order = received(court)
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, order)
        await status_of(bootstrap, order["case_id"], "approved")
        deadline = time.monotonic() + 10
        while True:
            answer = await http.get("/review/cases", params={"status": "", "limit": 1000}, headers=as_("tok-alice"))
            if answer.status_code != 200 or order["case_id"] in [c["case_id"] for c in answer.json()]:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)

    assert answer.status_code == 200
    assert {"approved"} <= {c["status"] for c in answer.json()}


async def test_each_country_takes_its_route(bootstrap, database_url):
    """Outside the EU, the US and the UK, a court order must come through mutual legal assistance."""
    brazil, uk = new_authority("court", "BR"), new_authority("court", "GB")
    direct, agreed = received(brazil), received(uk)
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, brazil, uk)
        refused = await decided(bootstrap, direct)
        accepted = await decided(bootstrap, agreed)

    assert refused["type"] == "warden.legal.request.rejected.v1"
    [reason] = [r for r in refused["data"]["reasons"] if r["rule"] == "jurisdiction.route"]
    assert reason["code"] == "mlat_required"
    assert "mutual legal assistance" in reason["message"]
    assert accepted["type"] == "warden.legal.request.approved.v1"
    assert {"rule": "jurisdiction.route", "outcome": "passed"}.items() <= next(
        r for r in accepted["data"]["policy_rules"] if r["rule"] == "jurisdiction.route").items()
    assert refused["data"]["decided_by"] == accepted["data"]["decided_by"] == ["policy/2024-09.3"]
