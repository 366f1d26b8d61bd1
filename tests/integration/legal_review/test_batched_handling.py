"""A burst of requests handled batch by batch: the audit chain's tail is read once per batch and
chained on in memory, so the chain must still verify, with one opened + one decided entry per case;
the Case the handler builds must be the Case the database holds."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import fields
from datetime import datetime, timezone

import asyncpg

from warden.authorities import find_authority
from warden.contract.events import RequestReceived

from legal_review import audit, cases
from legal_review.policy import current_policy
from legal_review.rules import Facts, assess

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import publish_received, received, registered, status_of



def differs(held, stored) -> bool:
    """As written and as read back: by repr (types, time zones), JSON documents by value (jsonb orders keys)."""
    return held != stored if isinstance(held, dict) else repr(held) != repr(stored)

async def chain_in(conn: asyncpg.Connection) -> list[audit.AuditEntry]:
    """The chain as this (open) transaction sees it."""
    rows = await conn.fetch("SELECT * FROM audit_log ORDER BY seq")
    return [audit.AuditEntry(seq=r["seq"], case_id=str(r["case_id"]) if r["case_id"] else None, action=r["action"],
                             actor=r["actor"], at=r["at"], detail=json.loads(r["detail"]), prev_hash=r["prev_hash"],
                             hash=r["hash"]) for r in rows]


async def test_a_burst_keeps_the_audit_chain_whole_and_cases_as_stored(bootstrap, database_url):
    court = new_authority("court", "FR")
    approved = [received(court) for _ in range(6)]
    rejected = [received(court, instrument={"type": "subpoena"}) for _ in range(2)]
    replayed = {**approved[0]}  # the same case again (new event id): known, so no second entry
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        await asyncio.gather(*(publish_received(bootstrap, e) for e in [*approved, *rejected, replayed]))
        for event in approved:
            await status_of(bootstrap, event["case_id"], "approved")
        for event in rejected:
            await status_of(bootstrap, event["case_id"], "rejected")

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "legal_review"})
    try:
        checked, broken = await audit.verify_chain(conn)
        entries = {e["case_id"]: await audit.case_entries(conn, e["case_id"]) for e in [*approved, *rejected]}
        # The handler's path on a fresh case, rolled back: what open_case returns is what load_case reads.
        fresh = RequestReceived.model_validate(received(court))
        authority = await find_authority(conn, court["authority_id"])
        assessment = assess(Facts(fresh.request, fresh.received_at, authority, None), current_policy())
        transaction = conn.transaction()
        await transaction.start()
        try:
            chain = audit.Chain()
            opened = await cases.open_case(conn, fresh, assessment, authority, chain)
            stored = await cases.load_case(conn, fresh.case_id)
            differences = {f.name: (getattr(opened, f.name), getattr(stored, f.name)) for f in fields(cases.Case)
                           if differs(getattr(opened, f.name), getattr(stored, f.name))}
            again = await cases.open_case(conn, fresh, assessment, authority, chain)
            await cases.approve(conn, opened, ["policy/test"], datetime.now(timezone.utc), chain=chain)
            decided = await cases.load_case(conn, fresh.case_id)
            await audit.append(conn, None, "test.note", "tester", datetime.now(timezone.utc),
                               {"n": uuid.uuid4().hex}, chain)
            # Decided by the machine at once: the case, both entries and the decision in one statement.
            other = RequestReceived.model_validate(received(court))
            other_assessment = assess(Facts(other.request, other.received_at, authority, None), current_policy())
            at_once, rows = await cases.open_decided(conn, other, other_assessment, authority, chain)
            reread = await cases.load_case(conn, other.case_id)
            at_once_differences = {
                f.name: (getattr(at_once, f.name), getattr(reread, f.name)) for f in fields(cases.Case)
                if differs(getattr(at_once, f.name), getattr(reread, f.name))}
            recorded = await conn.fetchval("SELECT event FROM decisions WHERE case_id = $1", other.case_id)
            twice = await cases.open_decided(conn, other, other_assessment, authority, chain)
            checked_after, broken_after = audit.first_break(await chain_in(conn))
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
    assert broken is None and checked >= 2 * (len(approved) + len(rejected))
    assert {k: [x.action for x in v] for k, v in entries.items()} == {
        k: ["case.opened", "case.decided"] for k in entries}
    assert differences == {}
    assert again is None
    assert (decided.status, decided.decided_by) == ("approved", ["policy/test"])
    assert other_assessment.outcome == "approved" and at_once.status == "approved"
    assert at_once_differences == {}
    assert json.loads(recorded) == json.loads(rows[0].value)["data"]
    assert twice == (None, [])
    assert broken_after is None and checked_after == checked + 5


async def test_a_batch_of_decisions_publishes_one_checkpoint_at_the_head_it_reached(bootstrap, database_url):
    """Six cases decided in one consumer batch: one signed checkpoint goes out with the batch, naming the
    last entry the batch appended (not one per decision)."""
    from aiokafka.structs import ConsumerRecord

    from warden.audit import checkpoint_problem, configured_public_keys
    from warden.contract.envelope import encode_structured, new_event
    from warden.contract.events import AuditCheckpoint
    from warden.runtime.batch import BatchProcessor
    from warden.runtime.database import create_pool

    from legal_review.service import SERVICE

    court = new_authority("court", "FR")
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
    events = [received(court) for _ in range(5)] + [received(court, instrument={"type": "subpoena"})]
    records = []
    for offset, data in enumerate(events):
        value, headers = encode_structured(new_event(
            "warden.legal.request.received.v1", "/warden/intake", data))
        records.append(ConsumerRecord("legal.requests.received", 0, offset, 0, 0, None, value, None, 0, len(value),
                                      tuple(headers)))
    pool = await create_pool(database_url, "legal_review", 2)
    try:
        before = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'legal.audit.checkpoints'")
        await BatchProcessor(SERVICE, pool).process(records)
        rows = await pool.fetch("SELECT value FROM outbox WHERE topic = 'legal.audit.checkpoints' ORDER BY id")
        head = await pool.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        decided = await pool.fetchval("SELECT count(*) FROM decisions WHERE case_id = ANY($1::uuid[])",
                                      [e["case_id"] for e in events])
    finally:
        await pool.close()
    assert decided == 6
    assert len(rows) == before + 1
    checkpoint = AuditCheckpoint.model_validate(json.loads(rows[-1]["value"])["data"])
    assert (checkpoint.seq, checkpoint.head) == (head["seq"], head["hash"])
    assert checkpoint_problem(checkpoint, configured_public_keys()) is None
