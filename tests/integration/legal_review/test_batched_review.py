"""Legal review's received requests batch handler (handlers.review_requests): the batch's cases go out
together; a forged request is dead-lettered alone, without a replay; a case already known fails the
call, and the replay one event per call tells it (no second case, no second decision, no dead letter);
and a batch leaves what the same events one by one leave, audit chain included."""
from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate

from legal_review.audit import verify_chain
from legal_review.service import SERVICE

from tests.support.requests import new_authority, registry_record, request_data, signed
from tests.integration.legal_review.support import received, received_for

RECEIVED = "legal.requests.received"


def record(topic: str, event_type: str, data: dict, offset: int) -> ConsumerRecord:
    value, headers = encode_structured(new_event(event_type, "/tests", data))
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


def authority_record(authority: dict, offset: int) -> ConsumerRecord:
    return record("legal.authorities", "warden.legal.authority.registered.v1", registry_record(authority), offset)


def received_records(events: list[dict], first_offset: int) -> list[ConsumerRecord]:
    return [record(RECEIVED, "warden.legal.request.received.v1", e, first_offset + i) for i, e in enumerate(events)]


@pytest.fixture
async def legal_review(database_url):
    """A factory of (loop, pool, calls): legal review on a schema of its own, the handler's calls counted."""
    pools = []

    async def make():
        calls: list[int] = []
        original = SERVICE.subscription(RECEIVED)

        async def handle_batch(ctx, items):
            calls.append(len(items))
            await original.handle_batch(ctx, items)

        service = dataclasses.replace(
            SERVICE, schema=f"lr_batched_{uuid.uuid4().hex[:6]}",
            subscriptions=[dataclasses.replace(s, handle_batch=handle_batch) if s.topic == RECEIVED else s
                           for s in SERVICE.subscriptions])
        await migrate(database_url, service.schema, [RUNTIME_MIGRATIONS, *service.migrations])
        pool = await create_pool(database_url, service.schema, 2)
        pools.append(pool)
        return ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                            retry_initial_s=0.1, retry_max_s=0.1), pool, calls

    yield make
    for pool in pools:
        await pool.close()


async def effects(pool) -> dict:
    """Each case's status, how many audit entries each case has, the decisions and dead letters sent,
    and whether the chain verifies."""
    async with pool.acquire() as conn:
        status = {str(r["case_id"]): r["status"] for r in await conn.fetch("SELECT case_id, status FROM cases")}
        entries = {str(r["case_id"]): r["n"] for r in await conn.fetch(
            "SELECT case_id, count(*) AS n FROM audit_log WHERE case_id IS NOT NULL GROUP BY case_id")}
        rows = await conn.fetch("SELECT topic, value, header_names, header_values FROM outbox ORDER BY id")
        checked, broken = await verify_chain(conn, await conn.fetchval("SELECT current_schema()"))
    decided = sorted(json.loads(r["value"])["data"]["case_id"] for r in rows if r["topic"] == "legal.requests.decided")
    dead = [dict(zip(r["header_names"], r["header_values"]))["dlq.reason"].decode() for r in rows
            if r["topic"] == RECEIVED + ".dlq"]
    return {"status": status, "entries": entries, "decided": decided, "dead": dead, "chain_whole": broken is None}


async def test_a_forged_request_is_dead_lettered_alone_and_its_batch_mates_decided_in_one_call(legal_review):
    loop, pool, calls = await legal_review()
    court, impostor = new_authority("court", "FR"), new_authority("court", "FR")
    first, second = received(court), received(court)
    forged = received_for(signed(request_data(court), impostor["private_key"]))
    await loop.process([authority_record(court, 0)])

    await loop.process(received_records([first, forged, second], 1))

    assert calls == [3]  # no replay
    found = await effects(pool)
    assert found["status"] == {first["case_id"]: "approved", second["case_id"]: "approved"}
    assert found["decided"] == sorted([first["case_id"], second["case_id"]])
    assert found["dead"] == ["bad_signature"]
    assert found["entries"] == {first["case_id"]: 2, second["case_id"]: 2} and found["chain_whole"]


async def test_a_known_case_in_a_batch_is_told_in_the_replay_and_decided_once(legal_review):
    loop, pool, calls = await legal_review()
    court = new_authority("court", "FR")
    known, new = received(court), received(court)
    await loop.process([authority_record(court, 0)])
    await loop.process(received_records([known], 1))

    await loop.process(received_records([known, new], 2))  # the known request again, as a new event

    assert calls == [1, 2, 1, 1]  # the batch's call found the case known: replayed one event per call
    found = await effects(pool)
    assert found["status"] == {known["case_id"]: "approved", new["case_id"]: "approved"}
    assert found["decided"] == sorted([known["case_id"], new["case_id"]])  # once each
    assert found["dead"] == []
    assert found["entries"] == {known["case_id"]: 2, new["case_id"]: 2} and found["chain_whole"]


async def test_a_batch_leaves_what_the_same_events_one_by_one_leave(legal_review):
    court, impostor = new_authority("court", "FR"), new_authority("court", "FR")
    hold = received(court, instrument={"type": "preservation_request"})
    events = [received(court), hold, received(court, instrument={"type": "subpoena"}),
              received(court, instrument={"type": "preservation_request"},
                       extends_request_id=hold["request"]["request_id"], suspect=hold["request"]["suspect"]),
              received_for(signed(request_data(court), impostor["private_key"])), received(court)]
    results = []
    for one_by_one in (False, True):
        loop, pool, calls = await legal_review()
        await loop.process([authority_record(court, 0)])
        records = received_records(events, 1)
        for part in ([[r] for r in records] if one_by_one else [records]):
            await loop.process(part)
        results.append(await effects(pool))
        assert calls == ([1] * len(events) if one_by_one else [len(events)])
    assert results[0] == results[1]
    assert len(results[0]["status"]) == 5 and results[0]["dead"] == ["bad_signature"] and results[0]["chain_whole"]
