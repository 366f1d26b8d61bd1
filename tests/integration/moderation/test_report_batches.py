"""Reports scored a batch per transaction (Engine.score_batch), against the real Postgres and broker.

The batch path must leave exactly what the one-by-one path leaves, replay a batch
one by one when a handler fails (only that event dead-lettered), and be a no-op
that restores the faust window when a batch is redelivered (these three without
faust); and through faust, reports trickling into many small batches must all land in the
windowed table (a later report sees the earlier ones).
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta, timezone

from aiokafka.structs import ConsumerRecord

from moderation.banks import BankScorer, load_banks
from moderation.engine import Engine
from moderation.service import MIGRATIONS
from tests.integration.moderation.support import config, running_moderation, until
from tests.support.stack import service_settings
from warden.contract.envelope import encode_structured, new_event
from warden.runtime import kafka
from warden.runtime.consumer import decode_record
from warden.runtime.database import create_pool, migrate

REPORTS, REPORT = "moderation.reports.submitted", "warden.moderation.report.submitted.v1"


def record(offset: int, content_id: str, reporter: str, reason: str = "drugs", *, report_id: str | None = None,
           event_id: str | None = None) -> ConsumerRecord:
    data = {"report_id": report_id or uuid.uuid4().hex, "reporter_id": reporter,
            "reported_at": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(), "surface": "search",
            "content": {"kind": "channel", "id": content_id, "owner_account_id": f"acc-{content_id}",
                        "title": "Weekend hiking group", "text": None},
            "reason": reason, "comment": None}
    value, headers = encode_structured(new_event(REPORT, "/tests", data, event_id=event_id))
    return ConsumerRecord(REPORTS, 0, offset, 0, 0, content_id.encode(), value, None, 0, 0, tuple(headers))


def reports_of(run: str) -> list[ConsumerRecord]:
    """One item mobbed to delisting (and reported once more after), one reporter repeating, the same event twice."""
    mobbed, repeated, twice = f"mob-{run}", f"rep-{run}", f"two-{run}"
    same = record(0, twice, f"r-{run}-t", event_id=f"ev-{run}")
    records = [record(1, mobbed, f"r-{run}-{n}") for n in range(4)]
    records += [record(5, repeated, f"r-{run}-x"), record(6, repeated, f"r-{run}-x"), same]
    records.append(record(8, twice, f"r-{run}-t", event_id=f"ev-{run}"))  # same CloudEvent id: a repeat
    return records


class FailingScorer(BankScorer):
    def __init__(self, banks, fail_on: str):
        super().__init__(banks)
        self.fail_on = fail_on

    def detect(self, content):
        if content.id == self.fail_on:
            raise ValueError("scorer broke")
        return super().detect(content)


@contextlib.asynccontextmanager
async def engine(database_url: str, tmp_path, schema: str, scorer=None):
    await migrate(database_url, schema, MIGRATIONS)
    pool = await create_pool(database_url, schema, 2)
    cfg = config(tmp_path)
    try:
        yield Engine(pool, cfg, scorer or BankScorer(load_banks(cfg.banks_file)), asyncio.Event(), asyncio.Event(),
                     retry_initial_s=0.05), pool
    finally:
        await pool.close()


async def state(pool) -> dict:
    async with pool.acquire() as conn:
        return {
            "reports": sorted(tuple(r) for r in await conn.fetch(
                "SELECT content_id, reporter_id, contribution FROM reports")),
            "content": sorted(tuple(r) for r in await conn.fetch("SELECT content_id, state FROM content")),
            "queue": sorted(tuple(r) for r in await conn.fetch("SELECT content_id, urgent, score FROM queue")),
            "outbox": sorted(r["topic"] for r in await conn.fetch("SELECT topic FROM outbox")),
            "inbox": await conn.fetchval("SELECT count(*) FROM inbox"),
        }


def strip(windows: dict) -> dict:
    return {content: sorted(reports) for content, reports in windows.items()}


async def test_a_batch_leaves_what_one_by_one_leaves(database_url, tmp_path):
    items = [decode_record(r) for r in reports_of(uuid.uuid4().hex[:8])]
    async with engine(database_url, tmp_path, "moderation") as (batched, pool_a), \
            engine(database_url, tmp_path, "moderation_b") as (single, pool_b):
        windows = await batched.score_batch(items, lambda _: {})
        one_by_one: dict = {}
        for item in items:
            content_id = item.payload.content.id
            one_by_one[content_id] = await single.score(item, one_by_one.get(content_id, {}))
        assert strip(windows) == strip(one_by_one)
        a, b = await state(pool_a), await state(pool_b)
    assert a == b
    assert a["outbox"] == ["moderation.decisions", "search.delistings"]  # the mobbed item, delisted once
    assert a["inbox"] == 7 and len(a["reports"]) == 7  # the event sent twice counts once


async def test_a_failing_handler_replays_the_batch_and_dead_letters_only_that_report(database_url, tmp_path):
    run = uuid.uuid4().hex[:8]
    items = [decode_record(r) for r in reports_of(run)]
    broken = f"rep-{run}"
    scorer = FailingScorer(load_banks(config(tmp_path).banks_file), broken)
    async with engine(database_url, tmp_path, "moderation", scorer) as (batched, pool):
        windows = await batched.score_batch(items, lambda _: {})
        found = await state(pool)
        async with pool.acquire() as conn:
            dead = await conn.fetch("SELECT header_names, header_values FROM outbox WHERE topic LIKE '%.dlq'")
    assert windows[broken] == {}
    assert found["outbox"].count("moderation.reports.submitted.dlq") == 2  # both reports of the broken item
    assert len(found["reports"]) == 5  # not the broken item's: its savepoints were rolled back
    assert dict(zip(dead[0]["header_names"], dead[0]["header_values"]))["dlq.reason"] == b"handler_error"
    assert "search.delistings" in found["outbox"]  # the rest of the batch went through
    assert found["inbox"] == 7


async def test_a_redelivered_batch_changes_nothing_and_puts_the_window_back(database_url, tmp_path):
    items = [decode_record(r) for r in reports_of(uuid.uuid4().hex[:8])]
    async with engine(database_url, tmp_path, "moderation") as (batched, pool):
        first = await batched.score_batch(items, lambda _: {})
        before = await state(pool)
        again = await batched.score_batch(items, lambda _: {})  # committed, then the table write was lost
        assert await state(pool) == before
    assert strip(again) == strip({c: {r: v for r, v in w.items() if not r.startswith("bank:")}
                                  for c, w in first.items()})


async def test_reports_through_faust_in_many_batches_fold_into_the_table(bootstrap, database_url, tmp_path):
    run = uuid.uuid4().hex[:8]
    items = [f"burst-{run}-{n}" for n in range(30)]

    async def burst(reporter: str) -> None:
        producer = kafka.producer(bootstrap, linger_ms=0, max_batch_size=16384, max_request_size=1024 * 1024)
        await producer.start()
        try:
            for offset, item in enumerate(items):
                r = record(offset, item, f"{reporter}-{item}")
                # One at a time: batches are cut by the wait, while more reports arrive (take_events' buffer).
                await producer.send_and_wait(REPORTS, r.value, key=r.key, headers=list(r.headers))
        finally:
            await producer.stop()

    async def count(sql: str) -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval(sql, f"burst-{run}-%")

    async with running_moderation(service_settings(bootstrap, database_url), config(tmp_path, batch_wait_s=0.01)):
        pool = await create_pool(database_url, "moderation", 1)
        try:
            await burst("a")
            await burst("b")  # drugs 4 + 4 = 8 per item: queued, not delisted
            await until(lambda: count("SELECT count(*) = 60 FROM reports WHERE content_id LIKE $1"))
            assert await count("SELECT count(*) FROM queue WHERE content_id LIKE $1 AND score = 8") == 30
            await burst("c")  # 12 only if the table kept both earlier reporters of each item
            await until(lambda: count("SELECT count(*) = 30 FROM decisions WHERE content_id LIKE $1"))
        finally:
            await pool.close()
