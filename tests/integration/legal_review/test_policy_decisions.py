"""Received requests become approved, rejected or pending_review decisions with the right events."""
from __future__ import annotations

import asyncpg

from tests.support.kafka import wait_for_events
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import (
    decision_of, publish_received, received, registered, status_of,
)


async def test_received_requests_are_approved_rejected_or_queued(bootstrap, database_url):
    court, police = new_authority("court", "FR"), new_authority("police", "US")
    valid = received(court, data_categories=["ip_addresses", "message_content", "phone_number"])
    subpoena = received(police, instrument={"type": "subpoena"})
    speech = received(court, offense={"category": "hate_speech", "statute": "Loi 1881", "description": "Posts"})
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court, police)
        for event in (valid, subpoena, speech):
            await publish_received(bootstrap, event)

        approved = await decision_of(bootstrap, valid["case_id"])
        approved_status = await status_of(bootstrap, valid["case_id"], "approved")
        [approved_progress] = await wait_for_events(
            bootstrap, "legal.requests.progress",
            lambda e: e["data"].get("case_id") == valid["case_id"] and e["data"]["status"] == "approved")
        rejected = await decision_of(bootstrap, subpoena["case_id"])
        rejected_status = await status_of(bootstrap, subpoena["case_id"], "rejected")
        pending_status = await status_of(bootstrap, speech["case_id"], "pending_review")

    assert approved["type"] == "warden.legal.request.approved.v1"
    data = approved["data"]
    assert data["kind"] == "disclosure" and data["data_categories"] == ["ip_addresses", "phone_number"]
    assert data["suspect"]["account_id"] == valid["request"]["suspect"]["account_id"]
    assert data["decided_by"] == ["policy/2024-09.3"]
    assert {r["rule"] for r in data["policy_rules"]} >= {"authority.competent", "data.grantable", "preservation.hold"}
    assert [r["code"] for r in approved_status["data"]["reasons"]] == ["category_refused"]
    # What was refused, in words, only where the authority reads its own (legal.requests.progress).
    assert approved_status["data"]["reasons"][0]["message"] == ""
    assert "message_content" in approved_progress["data"]["reasons"][0]["message"]

    assert rejected["type"] == "warden.legal.request.rejected.v1"
    codes = {(r["rule"], r["code"]) for r in rejected["data"]["reasons"]}
    assert ("instrument.judicial", "not_judicial_order") in codes
    assert {r["code"] for r in rejected_status["data"]["reasons"]} == {c for _, c in codes}

    assert [r["code"] for r in pending_status["data"]["reasons"]] == ["speech_offense"]
    decided = await wait_for_events(bootstrap, "legal.requests.decided",
                                    lambda e: e["data"]["case_id"] == speech["case_id"], count=0)
    assert decided == []  # the machine never decides a speech offense

    conn = await asyncpg.connect(database_url)
    try:
        rows = {str(r["case_id"]): r for r in await conn.fetch(
            "SELECT case_id, status, flags, approvals_required FROM legal_review.cases")}
        actions = [r["action"] for r in await conn.fetch(
            "SELECT action FROM legal_review.audit_log WHERE case_id = ANY($1::uuid[]) ORDER BY seq",
            [e["case_id"] for e in (valid, subpoena, speech)])]
    finally:
        await conn.close()
    assert rows[speech["case_id"]]["status"] == "pending_review"
    assert list(rows[speech["case_id"]]["flags"]) == ["human_rights"]
    assert rows[speech["case_id"]]["approvals_required"] == 2
    assert actions.count("case.opened") == 3 and actions.count("case.decided") == 2
