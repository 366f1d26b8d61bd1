"""Service.partition_lanes: a batch's partitions handled in that many transactions at once, each partition's
events in one of them and in offset order; a lane that fails leaves the others committed, and the batch
retried as a whole handles the failed lane's events once and drops the committed ones (inbox)."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.runtime.batch import BatchProcessor
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import Context, Service, Subscription

APPEALS, APPEAL = "moderation.appeals.submitted", "warden.moderation.appeal.submitted.v1"


def record(partition: int, offset: int) -> ConsumerRecord:
    value, headers = encode_structured(new_event(APPEAL, "/tests", {
        "appeal_id": f"p{partition}-{offset}", "content_id": "chan-1", "account_id": "acc-1", "statement": "mine",
        "submitted_at": "2026-01-01T00:00:00+00:00"}))
    return ConsumerRecord(APPEALS, partition, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


class Lanes:
    """A batch handler writing one row per event; each call waits until every lane has started (so lanes run
    one after the other never get past the first), and the partitions in `fails` raise a transient error once."""

    def __init__(self, lanes: int, fails: set[int] = frozenset()):
        self.lanes, self.fails = lanes, set(fails)
        self.started = 0
        self.all_started = asyncio.Event()
        self.calls: list[list[str]] = []

    async def handle_batch(self, ctx: Context, appeals: list) -> None:
        ids = [a.appeal_id for a in appeals]
        self.calls.append(ids)
        await ctx.conn.execute("INSERT INTO seen (id) SELECT unnest($1::text[])", ids)
        self.started += 1
        if self.started == self.lanes:
            self.all_started.set()
        await asyncio.wait_for(self.all_started.wait(), timeout=10)
        if ctx.partition in self.fails:
            self.fails.discard(ctx.partition)
            raise ConnectionResetError("the database went away")

    def service(self, schema: str) -> Service:
        return Service("lanes-test", schema, [Subscription(APPEALS, handle_batch=self.handle_batch)],
                       [RUNTIME_MIGRATIONS], partition_lanes=self.lanes)


async def processor(database_url: str, app: Lanes):
    schema = f"rt_lanes_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 4)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE seen (id text PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    return BatchProcessor(app.service(schema), pool), pool


async def test_two_lanes_handle_their_partitions_at_once_each_in_offset_order(database_url):
    app = Lanes(2)
    records = [record(p, o) for o in range(3) for p in range(4)]  # interleaved, as a poll returns them
    proc, pool = await processor(database_url, app)
    try:
        await asyncio.wait_for(proc.process(records), timeout=30)
        seen = {r["id"] for r in await pool.fetch("SELECT id FROM seen")}
    finally:
        await pool.close()
    assert seen == {f"p{p}-{o}" for p in range(4) for o in range(3)}
    assert len(app.calls) == 2
    for call in app.calls:  # whole partitions, each in offset order
        partitions = {i.split("-")[0] for i in call}
        for p in partitions:
            assert [i for i in call if i.startswith(p + "-")] == [f"{p}-{o}" for o in range(3)]
        assert len(partitions) == 2


async def test_a_failed_lane_leaves_the_others_committed_and_the_retry_handles_it_once(database_url):
    app = Lanes(2, fails={0})
    records = [record(p, o) for o in range(2) for p in range(2)]
    proc, pool = await processor(database_url, app)
    try:
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(proc.process(records), timeout=30)
        after_failure = {r["id"] for r in await pool.fetch("SELECT id FROM seen")}
        app.started, app.all_started = 1, asyncio.Event()  # the retry has one lane with events left
        await asyncio.wait_for(proc.process(records), timeout=30)
        seen = [r["id"] for r in await pool.fetch("SELECT id FROM seen ORDER BY id")]
        claimed = await pool.fetchval("SELECT count(*) FROM inbox")
    finally:
        await pool.close()
    assert after_failure == {"p1-0", "p1-1"}
    assert seen == ["p0-0", "p0-1", "p1-0", "p1-1"]
    assert claimed == 4
    assert app.calls[-1] == ["p0-0", "p0-1"]  # partition 1's events were duplicates: not handled again
