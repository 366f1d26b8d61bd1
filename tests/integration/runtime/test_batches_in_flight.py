"""Service.batches_in_flight: the next batch's transaction runs while an earlier one waits, yet offsets are
committed in the batches' order, and stopping lets the batches in flight finish."""
from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

from aiokafka import TopicPartition

from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import Context, Service, Subscription

from tests.integration.runtime.test_prefetch import DECIDED, approved, record
from tests.support.waiting import until

TP = TopicPartition(DECIDED, 0)


class Consumer:
    """What the loop asks of a Kafka consumer: the given batches, one per poll, then nothing; the offsets
    committed, each with the cases whose transactions had committed by then."""

    def __init__(self, batches: list[list], committed: list[str]):
        self.batches = [{TP: batch} for batch in batches]
        self.committed = committed
        self.commits: list[tuple[int, list[str]]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def highwater(self, tp: TopicPartition) -> None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append((offsets[TP], list(self.committed)))


class Slow:
    """A handler that holds the `slow` case's transaction open until released."""

    def __init__(self, slow: str):
        self.slow, self.release, self.committed = slow, asyncio.Event(), []

    async def handle(self, ctx: Context, decision) -> None:
        if decision.case_id == self.slow:
            await self.release.wait()
        ctx.on_commit(lambda: self.committed.append(decision.case_id))

    def service(self, schema: str) -> Service:
        return Service("in-flight-test", schema, [Subscription(DECIDED, self.handle)], [RUNTIME_MIGRATIONS])


@asynccontextmanager
async def running_loop(database_url: str, batches_in_flight: int):
    """A loop over two batches, the first one slow; on the way out: stopped, and the slow one released."""
    schema = f"rt_in_flight_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, batches_in_flight + 1)
    slow, fast = str(uuid.uuid4()), str(uuid.uuid4())
    app = Slow(slow)
    consumer = Consumer([[record(0, approved(slow))], [record(1, approved(fast))]], app.committed)
    loop = ConsumerLoop(app.service(schema), pool, consumer, batch_max_records=100, poll_timeout_ms=20,
                        retry_initial_s=0.1, retry_max_s=0.1, batches_in_flight=batches_in_flight)
    stopping = asyncio.Event()
    running = asyncio.create_task(loop.run(stopping))
    try:
        yield app, consumer, stopping, running, (slow, fast)
    finally:
        stopping.set()
        app.release.set()
        await asyncio.wait_for(running, 10)
        await pool.close()


async def test_a_later_batch_commits_while_an_earlier_one_waits_but_its_offsets_wait_for_it(database_url):
    async with running_loop(database_url, 2) as (app, consumer, _, _, (slow, fast)):
        await until(lambda: fast in app.committed, 10, interval=0.02)  # the second batch did not wait for the first
        assert app.committed == [fast]
        await asyncio.sleep(0.3)  # quiet polls, each a chance to commit what is handled
        assert consumer.commits == []  # offset 1 is handled, offset 0 is not: nothing may be committed
        app.release.set()
        await until(lambda: consumer.commits and consumer.commits[-1][0] == 2, 10, interval=0.02)
    assert app.committed == [fast, slow]
    assert all(slow in done and fast in done for _, done in consumer.commits)  # offset 2 only after both


async def test_one_batch_in_flight_handles_them_in_order(database_url):
    async with running_loop(database_url, 1) as (app, consumer, _, _, (slow, fast)):
        await asyncio.sleep(0.5)
        assert app.committed == []  # the second batch waits for the first
        app.release.set()
        await until(lambda: consumer.commits and consumer.commits[-1][0] == 2, 10, interval=0.02)
    assert app.committed == [slow, fast]


async def test_stopping_lets_the_batches_in_flight_commit_and_commits_their_offsets(database_url):
    async with running_loop(database_url, 2) as (app, consumer, stopping, running, (slow, fast)):
        await until(lambda: fast in app.committed, 10, interval=0.02)
        stopping.set()
        await asyncio.sleep(0.2)
        assert not running.done()  # the slow batch is still in its transaction
        app.release.set()
        await asyncio.wait_for(running, 10)
    assert app.committed == [fast, slow]
    assert consumer.commits[-1][0] == 2
