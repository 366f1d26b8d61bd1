"""On a shared broker, a bench step's new consumer groups skip what earlier steps and runs left."""
from __future__ import annotations

import uuid

from warden.runtime import kafka

from bench.legal import start_at_the_end
from tests.support.kafka import produce_raw

SUBMITTED = "legal.requests.submitted"


async def test_a_steps_groups_start_after_what_the_topics_already_hold(bootstrap):
    await produce_raw(bootstrap, SUBMITTED, b"left by an earlier step", key=b"court-1")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    await start_at_the_end(bootstrap, prefix)
    await produce_raw(bootstrap, SUBMITTED, b"this step's", key=b"court-1")

    consumer = kafka.consumer(bootstrap, f"{prefix}-intake")
    consumer.subscribe([SUBMITTED])
    await consumer.start()
    try:
        seen: list[bytes] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            seen += [r.value for records in batch.values() for r in records]
            if seen:
                break
    finally:
        await consumer.stop()
    assert seen == [b"this step's"]
