"""Disclosure's schema distributes by account on Citus: what deploy/citus/disclosure.sql declares fits the keys.

Citus refuses a distributed table whose primary key or unique constraints lack the distribution
column, a foreign key from a distributed table to anything but a reference table or a co-located
table on the same column, and a reference table pointing at a distributed one. These are checked
here against the migrated schema, so a migration that breaks them fails before a deployment does.
"""
from __future__ import annotations

import asyncpg

from warden.runtime.database import RUNTIME_MIGRATIONS, migrate

from disclosure.service import SERVICE
from tests.support.citus import plan


async def test_every_table_is_placed_and_keyed_for_its_place(database_url):
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    conn = await asyncpg.connect(database_url)
    try:
        tables = {r["relname"] for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'disclosure' AND c.relkind IN ('r', 'p') AND NOT c.relispartition")}
        unique = await conn.fetch(
            "SELECT c.relname AS table, i.indexrelid::regclass::text AS index,"
            " array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid"
            "       AND a.attnum = ANY(i.indkey))::text[] AS columns"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'disclosure' AND i.indisunique AND NOT c.relispartition")
        foreign = await conn.fetch(
            "SELECT f.conrelid::regclass::text AS source, t.relname AS target,"
            " array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = f.conrelid"
            "       AND a.attnum = ANY(f.conkey))::text[] AS columns"
            " FROM pg_constraint f JOIN pg_class t ON t.oid = f.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE f.contype = 'f' AND n.nspname = 'disclosure'")
        not_null = {(r["table"], r["column"]) for r in await conn.fetch(
            "SELECT c.relname AS table, a.attname AS column FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'disclosure' AND a.attnotnull")}
    finally:
        await conn.close()
    placed = plan()

    assert set(placed) == tables, "every table of the schema is placed once by deploy/citus/disclosure.sql"
    distributed = {t for t, (kind, _, _) in placed.items() if kind == "distributed"}
    by_account = {"accounts", "phone_changes", "username_changes", "sessions", "held_sessions", "holds"}
    assert distributed == by_account | {"identifier_holders"}
    for table in distributed:
        _, column, colocated = placed[table]
        assert (table, column) in not_null, f"{table}.{column} is the distribution column: NOT NULL"
        if table in by_account:
            assert column == "account_id", table
            assert colocated == (None if table == "accounts" else "accounts"), f"{table} is co-located with accounts"
    # The directory is keyed by the identifier, so the lookup by value is routed; its own group.
    assert placed["identifier_holders"] == ("distributed", "value", "none")
    for row in unique:
        if row["table"] in distributed:
            column = placed[row["table"]][1]
            assert column in row["columns"], f"{row['index']} lacks the distribution column {column}"
    for row in foreign:
        source = row["source"].split(".")[-1]
        target_kind = placed[row["target"]][0]
        if source in distributed:
            assert target_kind == "reference" or (
                row["target"] in distributed and placed[row["target"]][1] == placed[source][1] == "account_id"
                and "account_id" in row["columns"]), f"{source} -> {row['target']}"
        elif placed[source][0] == "reference":
            assert target_kind == "reference", f"{source} -> {row['target']}"
