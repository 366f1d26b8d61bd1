"""A non-judicial emergency needs a confirming judicial order within 48 h, or the case is flagged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg

from legal_review.audit import verify_chain
from legal_review.jobs import sweep

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import publish_received, received, registered, status_of

EMERGENCY = dict(instrument={"type": "emergency_request"}, emergency=True,
                 emergency_justification="Missing child, credible threat")


async def test_unconfirmed_emergency_is_flagged_after_48_hours(bootstrap, database_url):
    police, court = new_authority("police", "FR"), new_authority("court", "FR")
    confirmed, unconfirmed = received(police, **EMERGENCY), received(police, **EMERGENCY)
    order = received(court, confirms_request_id=confirmed["request"]["request_id"],
                     suspect=confirmed["request"]["suspect"])  # the same person
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, police, court)
        for event in (confirmed, unconfirmed):
            await publish_received(bootstrap, event)
            await status_of(bootstrap, event["case_id"], "pending_review")
        await publish_received(bootstrap, order)
        await status_of(bootstrap, order["case_id"], "approved")

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "legal_review"})
    try:
        async with conn.transaction():
            early = await sweep(conn, datetime.now(timezone.utc) + timedelta(hours=47))
        async with conn.transaction():
            late = await sweep(conn, datetime.now(timezone.utc) + timedelta(hours=49))
        async with conn.transaction():
            again = await sweep(conn, datetime.now(timezone.utc) + timedelta(hours=50))
        confirmed_by = await conn.fetchval("SELECT confirmed_by FROM cases WHERE case_id = $1", confirmed["case_id"])
        flags = await conn.fetchval("SELECT flags FROM cases WHERE case_id = $1", unconfirmed["case_id"])
        chain = await verify_chain(conn)
    finally:
        await conn.close()
    assert str(confirmed_by) == order["case_id"]
    # Topics are shared: the service also sees other tests' requests, so look at ours only.
    ours = {confirmed["case_id"], unconfirmed["case_id"]}
    assert not ours & set(early.newly_flagged) and early.overdue["emergency"] >= 2
    assert ours & set(late.newly_flagged) == {unconfirmed["case_id"]} and late.unconfirmed >= 1
    assert not ours & set(again.newly_flagged)
    assert "confirmation_missing" in flags
    assert chain[1] is None
