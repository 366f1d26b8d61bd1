"""On a shared broker, a bench step's new consumer groups (each service's, and its views') skip what earlier
steps and runs left."""
from __future__ import annotations

import uuid

import pytest

from warden.runtime import kafka

from bench.legal import start_at_the_end
from tests.support.kafka import produce_raw


@pytest.mark.parametrize("group, topic", [("intake", "legal.requests.submitted"),
                                          ("intake-views", "legal.requests.progress")])
async def test_a_steps_groups_start_after_what_the_topics_already_hold(bootstrap, group, topic):
    # Markers of this test's own: other tests' services may write these topics meanwhile.
    run = uuid.uuid4().hex[:8].encode()
    left, this = b"left by an earlier step " + run, b"this step's " + run
    await produce_raw(bootstrap, topic, left, key=b"court-1")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    await start_at_the_end(bootstrap, prefix)
    await produce_raw(bootstrap, topic, this, key=b"court-1")

    consumer = kafka.consumer(bootstrap, f"{prefix}-{group}")
    consumer.subscribe([topic])
    await consumer.start()
    try:
        seen: list[bytes] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            seen += [r.value for records in batch.values() for r in records]
            if this in seen:
                break
    finally:
        await consumer.stop()
    assert this in seen and left not in seen
