"""The WAL a measured stretch of a bench wrote, table by table (`python -m bench --only legal --wal`).

PostgreSQL waits for a transaction's WAL to reach the disk before its commit returns, so what a
request writes is part of what it waits for. `WalWindow` marks where a stretch starts, holding a
temporary replication slot so that no checkpoint recycles the stretch's WAL before it is read;
`written` then reads the stretch with `pg_walinspect` and gives each table's share: its rows, its
indexes and its TOAST (a record counts for the relation of its first block; records of no relation,
commits among them, and of relations of other databases, are `other`). Needs a superuser (the
embedded server's); anything less gives the reason instead of figures.
"""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import asyncpg

_RELATIONS = """
SELECT c.oid, pg_relation_filenode(c.oid) AS filenode, n.nspname || '.' || c.relname AS name, c.reltoastrelid,
       i.indrelid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE pg_relation_filenode(c.oid) IS NOT NULL"""

_BY_FILENODE = """
SELECT relfilenode, sum(record_length)::bigint AS bytes
FROM pg_get_wal_block_info($1::pg_lsn, $2::pg_lsn)
WHERE block_id = 0 AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY relfilenode"""


def owning_tables(relations: list[dict]) -> dict[int, str]:
    """filenode -> the table a relation belongs to: an index's table, a TOAST table's owner, a TOAST
    index's owner through its TOAST table; any other relation is its own table."""
    by_oid = {r["oid"]: r for r in relations}
    toast_owner = {r["reltoastrelid"]: r["oid"] for r in relations if r["reltoastrelid"]}

    def table(oid: int) -> int:
        indexed = by_oid[oid]["indrelid"]
        if indexed is not None and indexed in by_oid:
            oid = indexed
        return toast_owner.get(oid, oid)

    return {r["filenode"]: by_oid[table(r["oid"])]["name"] for r in relations}


def per_table(total_bytes: int, by_filenode: dict[int, int], tables: dict[int, str], items: int,
              top: int = 12) -> dict:
    """KB per item: in total, for the `top` tables that wrote most, and `other` (the rest)."""
    if items <= 0:
        raise ValueError("WAL per item needs at least one item")
    written = Counter()
    for filenode, size in by_filenode.items():
        written[tables.get(filenode, "other")] += size
    kept = dict([(name, size) for name, size in written.most_common() if name != "other"][:top])
    other = total_bytes - sum(kept.values())
    per_item = lambda size: round(size / items / 1024, 2)  # noqa: E731
    return {"kb_per_item": per_item(total_bytes), "items": items,
            "by_table_kb_per_item": {name: per_item(size) for name, size in kept.items()},
            "other_kb_per_item": per_item(other)}


@dataclass
class WalWindow:
    """`async with WalWindow(url) as wal:` ... `await wal.written(items)`. The connection holds the
    temporary slot for the window; the slot goes with it, whatever ends the window."""

    database_url: str
    start: int = 0
    unavailable: str = ""
    conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> WalWindow:
        self.conn = await asyncpg.connect(self.database_url)
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            await self.conn.execute("SELECT pg_create_physical_replication_slot($1, true, true)",
                                    f"bench_wal_{uuid.uuid4().hex[:8]}")
            self.start = await self.conn.fetchval("SELECT pg_current_wal_lsn()")
        except asyncpg.PostgresError as exc:
            self.unavailable = f"no WAL figures: {exc}"
        return self

    async def written(self, items: int) -> dict:
        """The window's WAL so far, per item; or why there are no figures."""
        if self.unavailable:
            return {"unavailable": self.unavailable}
        end = await self.conn.fetchval("SELECT pg_current_wal_lsn()")
        by_filenode = {r["relfilenode"]: r["bytes"] for r in await self.conn.fetch(_BY_FILENODE, self.start, end)}
        tables = owning_tables([dict(r) for r in await self.conn.fetch(_RELATIONS)])
        return per_table(end - self.start, by_filenode, tables, items)

    async def __aexit__(self, *exc_info) -> None:
        await self.conn.close()
