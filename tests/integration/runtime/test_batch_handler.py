"""Subscription.handle_batch: one call per batch with the topic's valid new events as BatchItems; an item it
rejects is dead-lettered alone; anything it raises replays the batch one event per call.

Also Context.on_commit: hooks run once the batch's transaction committed, never for a pass rolled back.
"""
from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import EventRejected, encode_structured, new_event
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.contract.events import AppealSubmitted
from warden.runtime.service import BatchItem, Context, Service, Subscription

APPEALS, APPEAL = "moderation.appeals.submitted", "warden.moderation.appeal.submitted.v1"


def record(offset: int, appeal_id: str | None) -> ConsumerRecord:
    if appeal_id is None:
        value, headers = b"not json", []
    else:
        value, headers = encode_structured(new_event(APPEAL, "/tests", {
            "appeal_id": appeal_id, "content_id": "chan-1", "account_id": "acc-1", "statement": "mine",
            "submitted_at": "2026-01-01T00:00:00+00:00"}))
    return ConsumerRecord(APPEALS, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


class Recorder:
    """A batch handler that writes one row per event, set-based, and fails on the ids it is told to: `breaks`
    raises a bug, `rejects` raises EventRejected, `refuses` rejects the item (BatchItem.reject) before writing."""

    def __init__(self, *, breaks: str | None = None, rejects: str | None = None, refuses: str | None = None):
        self.calls: list[list[str]] = []
        self.committed: list[list[str]] = []
        self.breaks, self.rejects, self.refuses = breaks, rejects, refuses

    async def handle_batch(self, ctx: Context, items: list[BatchItem[AppealSubmitted]]) -> None:
        self.calls.append([item.event.appeal_id for item in items])
        for item in items:
            if item.event.appeal_id == self.refuses:
                item.reject("not_owner", "the appeal is not from the owner")
        ids = [item.event.appeal_id for item in items if item.rejection is None]
        await ctx.conn.execute("INSERT INTO seen (id) SELECT unnest($1::text[])", ids)
        if self.rejects in ids:
            raise EventRejected("not_owner", "the appeal is not from the owner")
        if self.breaks in ids:
            raise ValueError("a bug")
        ctx.on_commit(lambda: self.committed.append(ids))

    def service(self, schema: str) -> Service:
        return Service("batch-test", schema, [Subscription(APPEALS, handle_batch=self.handle_batch)],
                       [RUNTIME_MIGRATIONS])


@asynccontextmanager
async def seen_table(database_url: str):
    """A runtime schema with a table `seen` for the handlers' writes: its name and pool."""
    schema = f"rt_batch_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE seen (id text PRIMARY KEY)")
        yield schema, pool
    finally:
        await pool.close()


async def seen_and_dead_letters(pool) -> tuple[list[str], list[bytes]]:
    """The ids the handlers wrote, and the reasons of the dead letters, in order."""
    async with pool.acquire() as conn:
        seen = [r["id"] for r in await conn.fetch("SELECT id FROM seen ORDER BY id")]
        reasons = [dict(zip(r["header_names"], r["header_values"]))["dlq.reason"] for r in await conn.fetch(
            "SELECT header_names, header_values FROM outbox WHERE topic = $1 ORDER BY id", APPEALS + ".dlq")]
    return seen, reasons


def loop_of(service: Service, pool) -> ConsumerLoop:
    return ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)


async def run(database_url: str, app: Recorder, records: list[ConsumerRecord]) -> tuple[list[str], list[bytes]]:
    async with seen_table(database_url) as (schema, pool):
        await loop_of(app.service(schema), pool).process(records)
        return await seen_and_dead_letters(pool)


async def test_one_call_per_batch_with_the_valid_events_in_offset_order(database_url):
    app = Recorder()
    seen, reasons = await run(database_url, app, [record(0, "a"), record(1, None), record(2, "b"), record(3, "c")])
    assert app.calls == [["a", "b", "c"]]
    assert app.committed == [["a", "b", "c"]]
    assert seen == ["a", "b", "c"] and reasons == [b"undecodable"]


@pytest.mark.parametrize("failure, reason", [("breaks", b"handler_error"), ("rejects", b"not_owner")])
async def test_a_failing_event_replays_the_batch_one_event_per_call_and_only_it_is_dead_lettered(
        database_url, failure, reason):
    app = Recorder(**{failure: "b"})
    seen, reasons = await run(database_url, app, [record(0, "a"), record(1, "b"), record(2, "c")])
    assert app.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert app.committed == [["a"], ["c"]]  # nothing of the rolled-back pass, nothing of the failed event
    assert seen == ["a", "c"] and reasons == [reason]


async def test_an_item_rejected_by_the_batch_handler_is_dead_lettered_alone_without_a_replay(database_url):
    app = Recorder(refuses="b")
    seen, reasons = await run(database_url, app, [record(0, "a"), record(1, "b"), record(2, "c")])
    assert app.calls == [["a", "b", "c"]]  # one call: no replay for a rejected item
    assert app.committed == [["a", "c"]]
    assert seen == ["a", "c"] and reasons == [b"not_owner"]


async def test_an_item_rejected_in_the_replay_is_rolled_back_and_dead_lettered(database_url):
    app = Recorder(breaks="a", refuses="c")  # the bug forces the replay, where "c" is refused in its own call
    seen, reasons = await run(database_url, app, [record(0, "a"), record(1, "b"), record(2, "c")])
    assert app.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert app.committed == [["b"]]
    assert seen == ["b"] and reasons == [b"handler_error", b"not_owner"]
