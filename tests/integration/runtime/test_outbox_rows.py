"""Outbox rows keep the order handlers emitted them in (per-key order on Kafka) and their headers intact."""
from __future__ import annotations

from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.outbox import OutboxRow, write_rows


async def test_rows_keep_emission_order_and_ragged_headers(database_url):
    await migrate(database_url, "rt_outbox", [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, "rt_outbox", 2)
    rows = [
        OutboxRow("a", b"k1", b"v1", [("content-type", b"x")], "t"),
        OutboxRow("a.dlq", None, b"", [(f"dlq.h{i}", bytes([i])) for i in range(7)]),
        OutboxRow("b", b"k2", b"v2", []),
        OutboxRow("a", b"k1", b"v3", [("content-type", b"y"), ("other", b"")], "t"),
    ]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await write_rows(conn, rows)
        async with pool.acquire() as conn:
            stored = await conn.fetch("SELECT topic, key, value, header_names, header_values FROM outbox ORDER BY id")
    finally:
        await pool.close()
    assert [(r["topic"], r["key"], r["value"], list(zip(r["header_names"], r["header_values"])))
            for r in stored] == [(r.topic, r.key, r.value, r.headers) for r in rows]
