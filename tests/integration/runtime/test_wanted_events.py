"""A subscription that declares which of its topic's events it acts on (Subscription.wants): the others are
acknowledged with nothing done (no validation, inbox row, handler call or dead letter) and counted as ignored;
the ones it wants are handled as ever, a forged one dead-lettered."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from warden.contract.envelope import encode_structured, new_event
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import Context, Service, Subscription

STATUS = "legal.requests.status"
TYPE = "warden.legal.request.status.v1"


def record(offset: int, data: dict) -> ConsumerRecord:
    value, headers = encode_structured(new_event(TYPE, "/tests", data))
    return ConsumerRecord(STATUS, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


def status(value: str, **overrides) -> dict:
    return {"request_id": f"r-{uuid.uuid4().hex[:8]}", "authority_id": "court-1", "case_id": str(uuid.uuid4()),
            "status": value, "reasons": [], "at": datetime.now(timezone.utc).isoformat(), **overrides}


def consumed(outcome: str) -> float:
    return REGISTRY.get_sample_value("warden_events_consumed_total", {"topic": STATUS, "outcome": outcome}) or 0.0


@pytest.fixture
async def closings(database_url):
    """(loop, seen, pool): a consumer loop whose handler keeps the statuses it is given, wanting closings only."""
    schema = f"rt_wants_{uuid.uuid4().hex[:6]}"
    seen: list[str] = []

    async def keep(ctx: Context, event) -> None:
        seen.append(event.status.value)

    service = Service("wants-test", schema, [Subscription(
        STATUS, keep, wants=lambda envelope: envelope.data.get("status") in ("no_data", "cancelled"))],
        [RUNTIME_MIGRATIONS])
    await migrate(database_url, schema, service.migrations)
    pool = await create_pool(database_url, schema, 1)
    loop = ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    yield loop, seen, pool
    await pool.close()


async def test_unwanted_events_are_acknowledged_with_nothing_done(closings):
    loop, seen, pool = closings
    ignored_before, dead_before = consumed("ignored"), consumed("dead_lettered")
    await loop.process([
        record(0, status("received")),
        record(1, status("disclosed", reasons="not a list")),  # unwanted: not even validated
        record(2, status("no_data")),
        record(3, status("cancelled", at="yesterday")),        # wanted and invalid: dead-lettered as ever
        record(4, status("approved")),
    ])

    assert seen == ["no_data"]
    async with pool.acquire() as conn:
        inbox = await conn.fetchval("SELECT count(*) FROM inbox")
        dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", STATUS + ".dlq")
    assert inbox == 2 and dead == 1  # only the wanted two were claimed; only the invalid wanted one dead-lettered
    assert consumed("ignored") - ignored_before == 3
    assert consumed("dead_lettered") - dead_before == 1


async def test_a_batch_of_unwanted_events_leaves_nothing_behind(closings):
    loop, seen, pool = closings
    await loop.process([record(0, status("received")), record(1, status("disclosed"))])
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 0
    assert seen == []
