"""Subscription.read_every_s, on a real broker: a view behind its partition's end reads at full speed; once
current, its partition is not fetched again until the interval has passed, while the other subscriptions'
events flow on; what arrived meanwhile comes in the next poll, each event handled once.

Its own broker, so that the session's other tests' events are not in these topics."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

import pytest

from warden.contract.events import status_events
from warden.embedded import EmbeddedKafka
from warden.runtime import kafka
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.outbox import event_row
from warden.runtime.service import BatchItem, Context, Service, Subscription

PROGRESS, STATUS = "legal.requests.progress", "legal.requests.status"
INTERVAL_S = 3.0


@pytest.fixture
def broker(tmp_path):
    embedded = EmbeddedKafka(log_file=tmp_path / "tansu.log").start()
    yield embedded.bootstrap
    embedded.stop()


class Handled:
    """Each handler call's request ids, per topic, with when it was made."""

    def __init__(self):
        self.calls: list[tuple[str, list[str], float]] = []

    def keeper(self, topic: str):
        async def keep(ctx: Context, items: list[BatchItem]) -> None:
            self.calls.append((topic, [item.event.request_id for item in items], time.monotonic()))
        return keep

    def of(self, topic: str) -> list[tuple[list[str], float]]:
        return [(ids, at) for t, ids, at in self.calls if t == topic]

    def ids(self, topic: str) -> list[str]:
        return [i for ids, _ in self.of(topic) for i in ids]

    async def wait_for(self, topic: str, request_id: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while request_id not in self.ids(topic):
            assert time.monotonic() < deadline, f"{request_id} not handled on {topic}: {self.calls}"
            await asyncio.sleep(0.02)


async def send(producer, request_id: str) -> None:
    """The request's status on both topics, the progress first, each flushed on its own."""
    for event in status_events(request_id=request_id, authority_id="court-1", case_id=str(uuid.uuid4()),
                               status="received", at=datetime.now(timezone.utc)):
        row = event_row("intake", event)
        await producer.send_and_wait(row.topic, row.value, key=row.key, headers=row.headers)


async def send_backlog(producer, count: int) -> list[str]:
    """`count` requests' progress, as a view finds them waiting after a restart."""
    ids = [f"b-{n}" for n in range(count)]
    for request_id in ids:
        progress, _ = status_events(request_id=request_id, authority_id="court-1", case_id=str(uuid.uuid4()),
                                    status="received", at=datetime.now(timezone.utc))
        row = event_row("intake", progress)
        await producer.send(row.topic, row.value, key=row.key, headers=row.headers)
    await producer.flush()
    return ids


async def test_a_spaced_topic_is_fetched_again_only_after_its_interval_and_the_others_flow_meanwhile(
        broker, database_url):
    await kafka.create_topics(broker)
    handled = Handled()
    schema = f"rt_spaced_{uuid.uuid4().hex[:6]}"
    service = Service("spaced-test", schema, [
        Subscription(PROGRESS, handle_batch=handled.keeper(PROGRESS), read_every_s=INTERVAL_S),
        Subscription(STATUS, handle_batch=handled.keeper(STATUS))], [RUNTIME_MIGRATIONS])
    await migrate(database_url, schema, service.migrations)
    pool = await create_pool(database_url, schema, 2)
    consumer = kafka.consumer(broker, f"spaced-{uuid.uuid4().hex[:6]}")
    producer = kafka.producer(broker, linger_ms=0)
    await consumer.start()
    await producer.start()
    loop = ConsumerLoop(service, pool, consumer, batch_max_records=100, poll_timeout_ms=50,
                        retry_initial_s=0.1, retry_max_s=0.1)
    loop.subscribe()
    backlog = await send_backlog(producer, 250)  # three polls' worth
    stopping = asyncio.Event()
    running = asyncio.create_task(loop.run(stopping))
    try:
        # Behind the partition's end, the view reads at full speed: not one poll per interval.
        await handled.wait_for(PROGRESS, backlog[-1])
        assert handled.ids(PROGRESS) == backlog and len(handled.of(PROGRESS)) >= 3  # batches of 100
        calls = handled.of(PROGRESS)
        assert calls[-1][1] - calls[0][1] < INTERVAL_S  # (each paused poll would have waited the interval)
        handled.calls.clear()
        await asyncio.sleep(INTERVAL_S)  # the pause that followed the catch-up, over

        await send(producer, "r-1")
        await handled.wait_for(STATUS, "r-1")
        await handled.wait_for(PROGRESS, "r-1")

        for request_id in ("r-2", "r-3", "r-4"):
            await send(producer, request_id)
        await handled.wait_for(STATUS, "r-4")
        assert handled.ids(PROGRESS) == ["r-1"]  # the statuses flowed while the progress waited

        await handled.wait_for(PROGRESS, "r-4")
        (first, first_at), (rest, rest_at) = handled.of(PROGRESS)
        assert (first, rest) == (["r-1"], ["r-2", "r-3", "r-4"])  # one fetch, one call, for all that waited
        assert rest_at - first_at >= INTERVAL_S - 0.1
        assert handled.ids(STATUS) == ["r-1", "r-2", "r-3", "r-4"]
    finally:
        stopping.set()
        await asyncio.wait_for(running, 10)
        await consumer.stop()
        await producer.stop()
        await pool.close()
    assert not loop.spacing.paused  # the loop left no timer behind
