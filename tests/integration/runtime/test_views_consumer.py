"""A service's views (subscriptions with `read_every_s`) are read by a consumer of their own, in a consumer group
and transactions of their own (Service.consumers): while a view's batch is held up, the events that gate an
effect are handled and committed all the same, and each consumer group commits what its own loop handled.

Its own broker, so that the session's other tests' events are not in these topics."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest
from aiokafka import TopicPartition

from warden.contract.events import status_events
from warden.embedded import EmbeddedKafka
from warden.runtime import kafka
from warden.runtime.outbox import event_row
from warden.runtime.runner import Runtime
from warden.runtime.service import BatchItem, Context, Service, Subscription

from tests.support.kafka import topic_ends
from tests.support.stack import service_settings
from tests.support.waiting import until

PROGRESS, STATUS = "legal.requests.progress", "legal.requests.status"


@pytest.fixture
def broker(tmp_path):
    embedded = EmbeddedKafka(log_file=tmp_path / "tansu.log").start()
    yield embedded.bootstrap
    embedded.stop()


class UnregisteredService(Service):
    """A service the topic registry does not name, for the runtime's own tests."""

    def check_contract(self, _settings=None) -> None:
        pass


class Handlers:
    """The effect's handler keeps each status it commits; the view's handler keeps what it reads, and holds
    its batch's transaction open until released."""

    def __init__(self):
        self.release = asyncio.Event()
        self.viewed: list[str] = []

    async def record_status(self, ctx: Context, items: list[BatchItem]) -> None:
        await ctx.conn.executemany("INSERT INTO statuses (request_id) VALUES ($1)",
                                   [(item.event.request_id,) for item in items])

    async def view_progress(self, ctx: Context, items: list[BatchItem]) -> None:
        self.viewed += [item.event.request_id for item in items]
        await self.release.wait()


async def send(producer, request_id: str) -> None:
    """The request's status on both topics, the progress first."""
    for event in status_events(request_id=request_id, authority_id="court-1", case_id=str(uuid.uuid4()),
                               status="received", at=datetime.now(timezone.utc)):
        row = event_row("intake", event)
        await producer.send_and_wait(row.topic, row.value, key=row.key, headers=row.headers)


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    reader = kafka.consumer(bootstrap, group)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in reader.partitions_for_topic(topic)}
    finally:
        await reader.stop()


async def test_a_held_up_view_holds_back_no_effect_and_each_group_commits_its_own(broker, database_url):
    await kafka.create_topics(broker)
    handlers = Handlers()
    schema = f"rt_views_{uuid.uuid4().hex[:6]}"
    service = UnregisteredService("views-test", schema, [
        Subscription(PROGRESS, handle_batch=handlers.view_progress, read_every_s=0.2, deduplicates=True),
        Subscription(STATUS, handle_batch=handlers.record_status)], [])
    settings = service_settings(broker, database_url, commit_interval_ms=0)
    runtime = Runtime(service, settings)
    assert [s.topic for s in runtime.effects.subscriptions] == [STATUS]
    assert [s.topic for s in runtime.views.subscriptions] == [PROGRESS]

    running = asyncio.create_task(runtime.run())
    producer = kafka.producer(broker, linger_ms=0)
    await producer.start()
    try:
        await until(lambda: all(runtime.readiness().values()), interval=0.05)
        async with runtime.pool.acquire() as conn:
            await conn.execute("CREATE TABLE statuses (request_id text PRIMARY KEY)")

        async def statuses() -> set[str]:
            async with runtime.pool.acquire() as conn:
                return {r["request_id"] for r in await conn.fetch("SELECT request_id FROM statuses")}

        async def all_committed() -> bool:
            return await statuses() == {"r-1", "r-2", "r-3"}

        await send(producer, "r-1")
        await until(lambda: "r-1" in handlers.viewed, interval=0.05)  # the view's batch, held up
        for request_id in ("r-2", "r-3"):
            await send(producer, request_id)
        await until(all_committed, interval=0.05)
        assert handlers.viewed == ["r-1"]  # still holding its transaction
        assert all(runtime.readiness().values())

        handlers.release.set()
        await until(lambda: handlers.viewed[-1:] == ["r-3"], interval=0.05)
        assert sorted(handlers.viewed) == ["r-1", "r-2", "r-3"]
    finally:
        handlers.release.set()
        runtime.stopping.set()
        await asyncio.wait_for(running, 60)
        await producer.stop()

    # Each loop committed its own topic's offsets in its own group, and nothing of the other's.
    written = {topic: {p: end for p, end in (await topic_ends(broker, topic)).items() if end}
               for topic in (STATUS, PROGRESS)}
    effects, views = settings.group_id("views-test"), settings.views_group_id("views-test")
    assert {p: o for p, o in (await committed(broker, effects, STATUS)).items() if o} == written[STATUS]
    assert {p: o for p, o in (await committed(broker, views, PROGRESS)).items() if o} == written[PROGRESS]
    assert not any((await committed(broker, effects, PROGRESS)).values())
    assert not any((await committed(broker, views, STATUS)).values())
