"""Section 2: moderation throughput, reports/s through validation, scoring, persistence and decisions.

`reports` events are put on `moderation.reports.submitted` first; then one
moderation worker (`warden service moderation`, a subprocess) drains them. The
clock runs from the first report recorded in its database to the last one, and
the decisions (delistings, statements of reasons) must have left the outbox.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from bench.loads import produce_all, reports
from bench.stack import ServiceProcess, Stack
from bench.stats import rate


async def run(stack: Stack, events: int, logs: Path, profile: Path | None = None, label: str = "moderation") -> dict:
    run_id = f"{stack.run_id}{label[-1]}"
    produce_s = await produce_all(stack.bootstrap, "moderation.reports.submitted", reports(run_id, events))
    database_url = await stack.new_database(label)
    service = ServiceProcess("moderation", stack.bootstrap, database_url, f"bench-{run_id}", logs).start()
    prefix = f"bench-{run_id}-%"
    conn = None
    try:
        deadline = time.monotonic() + 120
        while conn is None:  # the service creates the schema at start
            try:
                conn = await asyncpg.connect(database_url)
                await conn.fetchval("SELECT 1 FROM moderation.reports LIMIT 1")
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                await conn.close()
                conn = None
                if time.monotonic() > deadline:
                    raise RuntimeError("moderation never created its schema")
                await asyncio.sleep(0.2)
        first = last = None
        done = 0
        profiled = False
        deadline = time.monotonic() + 900
        while done < events and time.monotonic() < deadline:
            done = await conn.fetchval("SELECT count(*) FROM moderation.reports WHERE report_id LIKE $1", prefix)
            now = time.perf_counter()
            if done and first is None:
                first = now
                if profile is not None and not profiled:
                    service.profile(profile, seconds=15)
                    profiled = True
            last = now
            if done < events:
                await asyncio.sleep(0.25)
        if done < events:
            raise RuntimeError(f"moderation processed {done} of {events} reports in time; see {service.log_path}")
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
    return {"reports": events, "seconds": round(elapsed, 3), "reports_per_s": rate(events, elapsed),
            "decisions": decisions, "outbox_drained_after_s": round(drained - first, 3),
            "peak_rss_mb": round(service.peak_rss / 2**20, 1), "preload_s": round(produce_s, 2)}
