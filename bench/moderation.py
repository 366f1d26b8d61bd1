"""Section 2: moderation throughput, reports/s through validation, scoring, persistence and decisions.

Moderation acts only on content the platform has described (`platform.content`),
so the section first has the worker take in the description of every item the
reports are about, and stops it. Then `reports` events are put on
`moderation.reports.submitted`, and the worker (`warden service moderation`, a
subprocess, the same consumer group) is started again and drains them. The clock
runs from the first report recorded in its database to the last one, and the
decisions (delistings, statements of reasons) must have left the outbox. Reporters
start established (WARDEN_MODERATION_TRUST_NEW=1.0), so that the hot items' five
reports delist by volume as in production once reporters have earned trust.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from bench.loads import content_ids, contents, produce_all, reports
from bench.stack import ServiceProcess, Stack
from bench.stats import rate

POLL_S = 0.02


async def run(stack: Stack, events: int, logs: Path, profile: Path | None = None, label: str = "moderation") -> dict:
    run_id = f"{stack.run_id}{label[-1]}"
    items = content_ids(run_id, events)
    await produce_all(stack.bootstrap, "platform.content", contents(items))
    database_url = await stack.new_database(label)
    settings = {"WARDEN_MODERATION_TRUST_NEW": "1.0"}
    service = ServiceProcess("moderation", stack.bootstrap, database_url, f"bench-{run_id}", logs, settings).start()
    prefix = f"bench-{run_id}-%"
    conn = None
    try:
        conn = await _schema_ready(database_url)
        await _until(lambda: conn.fetchval("SELECT count(*) FROM moderation.platform_content WHERE content_id LIKE $1",
                                           prefix), len(items), 600, "described items")
    finally:
        if conn is not None:
            await conn.close()
        service.stop()
    produce_s = await produce_all(stack.bootstrap, "moderation.reports.submitted", reports(run_id, events))
    service = ServiceProcess("moderation", stack.bootstrap, database_url, f"bench-{run_id}", logs, settings).start()
    conn = None
    try:
        conn = await _schema_ready(database_url)
        first, last, polls_s = await _time_reports(conn, prefix, events, service, profile)
        while await conn.fetchval("SELECT count(*) FROM moderation.outbox"):
            await asyncio.sleep(0.1)
        drained = time.perf_counter()
        decisions = await conn.fetchval("SELECT count(*) FROM moderation.decisions")
        elapsed = last - first
    finally:
        if conn is not None:
            await conn.close()
        service.stop()
    await stack.drop_database(database_url)
    return {"reports": events, "described_items": len(items), "seconds": round(elapsed, 3),
            "measuring_queries_s": round(polls_s, 3),
            "reports_per_s": rate(events, elapsed),
            "decisions": decisions, "outbox_drained_after_s": round(drained - first, 3),
            "peak_rss_mb": round(service.peak_rss / 2**20, 1), "preload_s": round(produce_s, 2)}


async def _time_reports(conn: asyncpg.Connection, prefix: str, events: int, service: ServiceProcess,
                        profile: Path | None) -> tuple[float, float, float]:
    """(first, last, seconds spent in these queries): the moment the worker inserted its first report, and the
    moment all `events` of them are committed, each to within `POLL_S`.

    Until the reports' sequence says every report was inserted, only the sequence is read (a row of its own):
    counting the reports scans the table, and would cost Postgres, which the worker shares the cores with, more
    the more reports it holds."""
    deadline = time.monotonic() + 900
    first = None
    spent = 0.0

    async def query(sql: str, *args) -> int:
        nonlocal spent
        started = time.perf_counter()
        value = await conn.fetchval(sql, *args)
        spent += time.perf_counter() - started
        return value

    inserted = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM moderation.reports_seq_seq"
    while (n := await query(inserted)) < events:
        if first is None and n > 0:
            first = time.perf_counter()
            if profile is not None:
                service.profile(profile, seconds=15)
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_S)
    if first is None:
        first = time.perf_counter()
    committed = "SELECT count(*) FROM moderation.reports WHERE report_id LIKE $1"
    while (done := await query(committed, prefix)) < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"moderation processed {done} of {events} reports in time; see {service.log_path}")
        await asyncio.sleep(POLL_S)
    return first, time.perf_counter(), spent


async def _schema_ready(database_url: str, timeout: float = 120) -> asyncpg.Connection:
    """A connection once the service has created its schema (at start)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.fetchval("SELECT 1 FROM moderation.reports LIMIT 1")
            return conn
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            await conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError("moderation never created its schema") from None
            await asyncio.sleep(0.2)


async def _until(count, wanted: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while (got := await count()) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"moderation took in {got} of {wanted} {what} in time")
        await asyncio.sleep(0.25)
