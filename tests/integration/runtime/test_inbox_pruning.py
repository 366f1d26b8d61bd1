"""Inbox rows past the window are pruned in small batches; newer ones stay; a running service prunes its own."""
from __future__ import annotations

import asyncio
import uuid

import asyncpg

from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.inbox import prune_inbox

from tests.support.stack import running, service_settings


async def seed(conn: asyncpg.Connection, old: int, recent: int) -> None:
    await conn.execute(
        "INSERT INTO inbox (source, event_id, topic, processed_at)"
        " SELECT '/tests', 'old-' || n, 't', now() - interval '40 days' FROM generate_series(1, $1) n"
        " UNION ALL SELECT '/tests', 'new-' || n, 't', now() - interval '1 day' FROM generate_series(1, $2) n",
        old, recent)


async def test_rows_past_the_window_go_in_batches_and_newer_ones_stay(database_url):
    schema = f"rt_inbox_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 1)  # one connection: the query logger sees every statement
    deletes: list[str] = []
    try:
        async with pool.acquire() as conn:
            await seed(conn, old=2500, recent=10)
            conn.add_query_logger(lambda q: deletes.append(q.query) if q.query.startswith("DELETE") else None)
        stopping = asyncio.Event()
        task = asyncio.create_task(prune_inbox("test", pool, stopping, retention_days=30, interval_s=60,
                                               batch_size=1000, pause_s=0))
        while await pool.fetchval("SELECT count(*) FROM inbox") > 10:
            await asyncio.sleep(0.05)
        left = await pool.fetch("SELECT event_id FROM inbox")
        stopping.set()
        await asyncio.wait_for(task, 5)  # a stop ends its wait for the next round at once
    finally:
        await pool.close()
    assert sorted(r["event_id"] for r in left) == sorted(f"new-{n}" for n in range(1, 11))
    assert len(deletes) == 3  # 1000 + 1000 + 500: never one statement for everything


async def test_a_running_service_prunes_its_inbox(bootstrap, database_url):
    settings = service_settings(bootstrap, database_url, inbox_retention_days=30, inbox_prune_interval_s=0.2)
    async with running("intake", settings):
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "intake"})
        try:
            await seed(conn, old=50, recent=5)
            for _ in range(100):
                if await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id LIKE 'old-%'") == 0:
                    break
                await asyncio.sleep(0.1)
            old = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id LIKE 'old-%'")
            recent = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id LIKE 'new-%'")
        finally:
            await conn.close()
    assert (old, recent) == (0, 5)
