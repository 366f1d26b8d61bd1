"""`python -m bench --wal`: the WAL of a window, per item, counted for the table whose rows, indexes or
TOAST wrote it, on the real server."""
from __future__ import annotations

import uuid

import asyncpg

from bench.wal import WalWindow


async def test_a_tables_rows_indexes_and_toast_are_counted_for_it(database_url):
    schema = f"wal_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"""CREATE SCHEMA {schema};
            CREATE TABLE {schema}.documents (id int PRIMARY KEY, body text);
            ALTER TABLE {schema}.documents ALTER COLUMN body SET STORAGE EXTERNAL;  -- TOASTed, uncompressed
            CREATE INDEX ON {schema}.documents (length(body));
            CREATE TABLE {schema}.marks (id int)""")
        async with WalWindow(database_url) as window:
            for i in range(100):
                await conn.execute(f"INSERT INTO {schema}.documents VALUES ($1, repeat('x', 20000))", i)
                await conn.execute(f"INSERT INTO {schema}.marks VALUES ($1)", i)
            figures = await window.written(100)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()

    tables = figures["by_table_kb_per_item"]
    assert list(tables)[0] == f"{schema}.documents"
    assert 20000 / 1024 <= tables[f"{schema}.documents"] < 23  # the body, in TOAST chunks, with its indexes
    assert tables[f"{schema}.marks"] < 0.2
    assert figures["kb_per_item"] >= tables[f"{schema}.documents"] + tables[f"{schema}.marks"]
    assert figures["other_kb_per_item"] > 0  # the commits
