"""The suspect lookup runs no cross-shard query once the store is distributed as deploy/citus/disclosure.sql says.

No Citus here, so the check is made on what Citus routes by: every statement the lookup sends is
captured on its connection (asyncpg's query logger) and planned by PostgreSQL with the values it
was sent (EXPLAIN with its arguments: a custom plan, so a parameter shows as the literal it was).
Each scan of a distributed table, partitions counted as their table, must carry, as a conjunct of
its own conditions, equality of that table's distribution column (read from the deployment script,
not restated here) with a literal: `col = 'v'` or `col = ANY ('{...}')`, which Citus prunes to the
shards holding those values. A key that comes from another relation of the statement (a join, a
LATERAL, a subquery's result: `col = d.account_id`, `col = ANY ($0)`) is not enough: Citus cannot
route on it. One statement reads distributed tables of one co-location group only.

So the check cannot pass by not looking: the tables the transaction actually scanned
(pg_stat_xact_user_tables) must be among those the captured plans read, and those must include
every table the lookup needs. And the checker itself is shown to refuse the shapes of a fan-out.
"""
from __future__ import annotations

import json
import re
import shutil
import uuid

import asyncpg
import pytest

from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet, create_pool, migrate

from disclosure import store
from disclosure.package import Session
from disclosure.service import SERVICE
from tests.integration.disclosure.test_batch_lookup import END, START, account_update, ago, seed, suspect
from tests.support.citus import colocation_group, plan

PLACED = plan()
LITERAL = r"'(?:[^']|'')*'::[a-z ]+(?:\[\])?"
CONDITIONS = ("Index Cond", "Recheck Cond", "Filter")
READ_BY_A_LOOKUP = {"identifier_holders", "accounts", "phone_changes", "username_changes", "sessions", "held_sessions"}


def conjuncts(condition: str) -> list[str]:
    """The top-level AND terms of a condition as EXPLAIN prints it: `((a) AND (b))` -> ['(a)', '(b)']."""
    if not (condition.startswith("(") and condition.endswith(")")):
        return [condition]
    inner, terms, depth, quoted, start = condition[1:-1], [], 0, False, 0
    for i, char in enumerate(inner):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and inner.startswith(" AND ", i):
            terms.append(inner[start:i])
            start = i + 5
    if not terms:
        return [condition]  # one term: the parentheses were its own
    return [*terms, inner[start:]]


def routes_on(condition: str, column: str, alias: str) -> bool:
    name = rf"(?:{re.escape(alias)}\.)?{column}"
    key = rf"(?:{LITERAL}|ANY \({LITERAL}\))"
    return any(re.fullmatch(rf"\({name} = {key}\)|\({LITERAL} = {name}\)", term)
               for term in conjuncts(condition))


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def parents(conn: asyncpg.Connection) -> dict[str, str]:
    """Partition -> its top table (sessions_20261130 -> sessions); other tables map to themselves."""
    rows = await conn.fetch(
        "WITH RECURSIVE up AS (SELECT c.oid, c.relname AS name, c.relname AS top FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'disclosure' AND NOT c.relispartition"
        " UNION ALL SELECT i.inhrelid, k.relname, up.top FROM up JOIN pg_inherits i ON i.inhparent = up.oid"
        " JOIN pg_class k ON k.oid = i.inhrelid) SELECT name, top FROM up")
    return {r["name"]: r["top"] for r in rows}


async def unrouted(conn: asyncpg.Connection, query: str, args: tuple, tables: dict[str, str]) -> tuple[set, list]:
    """(tables the statement reads, what in it Citus could not route)."""
    if not re.match(r"\s*(SELECT|WITH)\b", query, re.IGNORECASE):
        return set(), [f"not a read: {query[:60]!r}"]
    plan = json.loads(await conn.fetchval("EXPLAIN (VERBOSE, FORMAT JSON) " + query, *args))[0]["Plan"]
    read, problems, groups = set(), [], set()
    for node in nodes(plan):
        if node["Node Type"] == "ModifyTable":
            problems.append("writes on the lookup path")
        if node["Node Type"] == "Function Scan" and set(re.findall(r"(\w+)\(", node["Function Call"])) != {"unnest"}:
            problems.append(f"reads through a function ({node['Function Call']}): its queries are unseen")
        if "Relation Name" not in node:
            continue
        table = tables.get(node["Relation Name"], node["Relation Name"])
        read.add(table)
        kind, column, _ = PLACED[table]
        if kind != "distributed":
            continue
        groups.add(colocation_group(PLACED, table))
        if not any(routes_on(node[c], column, node["Alias"]) for c in CONDITIONS if c in node):
            problems.append(f"{table} read without {column} = a literal: "
                            f"{ {c: node[c] for c in CONDITIONS if c in node} }")
    if len(groups) > 1:
        problems.append(f"one statement reads tables distributed apart: {sorted(groups)}")
    return read, problems


async def scanned(conn: asyncpg.Connection, tables: dict[str, str]) -> dict[str, int]:
    """Scans of each disclosure table so far in this transaction, partitions counted as their table."""
    counts: dict[str, int] = {}
    for r in await conn.fetch("SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n"
                              " FROM pg_stat_xact_user_tables WHERE schemaname = 'disclosure'"):
        table = tables.get(r["relname"], r["relname"])
        counts[table] = counts.get(table, 0) + r["n"]
    return counts


async def check_lookup(conn: asyncpg.Connection, lookup) -> tuple[object, int, set[str], list[str]]:
    """Run `lookup(conn)` capturing its statements; (its result, how many statements, the tables they read,
    what in them is not routed)."""
    tables = await parents(conn)
    statements = []
    before = await scanned(conn, tables)
    conn.add_query_logger(statements.append)
    try:
        result = await lookup(conn)
    finally:
        conn.remove_query_logger(statements.append)
    after = await scanned(conn, tables)
    read, problems = set(), []
    for statement in statements:
        tables_read, found = await unrouted(conn, statement.query, statement.args, tables)
        read |= tables_read
        problems += found
    touched = {t for t, n in after.items() if n > before.get(t, 0)}
    assert statements and touched <= read, f"scanned by statements the check did not see: {touched - read}"
    return result, len(statements), read, problems


async def test_the_lookup_reads_each_table_by_its_distribution_column(database_url):
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    pool = await create_pool(database_url, SERVICE.schema, 1)
    tag = uuid.uuid4().hex[:6]
    try:
        async with pool.acquire() as conn, conn.transaction():
            ids = await seed(conn, tag)
            # An account known by its sessions only (no account row), and a session kept aside for a hold.
            await store.record_sessions(conn, [Session(f"quiet-{tag}", "192.0.2.1", ago(3))])
            await conn.execute("INSERT INTO held_sessions VALUES ($1, $2, '192.0.2.2')", ids["alice"], ago(4))
            suspects = [
                suspect(phone="+33611000001", username=f"alice{tag}"),
                suspect(account_id=ids["bob"], phone="+33611000002"),
                suspect(phone="+33611000009"),  # two holders
                suspect(account_id=f"quiet-{tag}"),
                suspect(account_id="nobody", username="nobody"),
            ]
            batch, sent, batch_read, batch_problems = await check_lookup(
                conn, lambda c: store.lookup_suspects(c, suspects))
            one, _, one_read, one_problems = await check_lookup(conn, lambda c: store.lookup_suspect(c, suspects[0]))
    finally:
        await pool.close()

    assert batch_problems == [] and one_problems == []
    assert sent == 3  # set-based: the same statements for a batch as for one suspect
    assert READ_BY_A_LOOKUP <= batch_read and READ_BY_A_LOOKUP <= one_read  # nothing left unchecked
    # ... and the lookups it checked found what they are for.
    assert batch[0].candidates == {"phone_number": {ids["alice"]}, "username": {ids["alice"]}}
    assert len(batch[0].sessions) == 13 and one.candidates == batch[0].candidates
    assert batch[1].candidates == {"account_id": {ids["bob"]}, "phone_number": {ids["bob"]}}
    assert batch[2].candidates == {"phone_number": {ids["carol"], ids["dave"]}}
    assert batch[3].candidates == {"account_id": {f"quiet-{tag}"}} and len(batch[3].sessions) == 1
    assert batch[4].candidates == {"account_id": set(), "username": set()}


# The shapes of a lookup that fans out or cannot be routed, each refused by the check above.
FAN_OUT = {
    "by value on a table distributed by account":
        ("SELECT account_id FROM phone_changes WHERE phone_number = $1", ("+33611000001",)),
    "keys from a join (LATERAL)":
        ("SELECT p.changed_at FROM identifier_holders h, LATERAL (SELECT changed_at FROM phone_changes"
         " WHERE account_id = h.account_id) p WHERE h.value = $1", ("+33611000001",)),
    "keys from a subquery":
        ("SELECT changed_at FROM phone_changes WHERE account_id = ANY"
         " (ARRAY(SELECT account_id FROM identifier_holders WHERE value = $1))", ("+33611000001",)),
    "keys from unnest, joined":
        ("SELECT s.observed_at FROM unnest($1::text[]) a(id) JOIN sessions s ON s.account_id = a.id", (["a"],)),
    "a key inside an OR":
        ("SELECT 1 FROM accounts WHERE account_id = $1 OR username = $2", ("a", "b")),
    "through a function":
        ("SELECT * FROM create_session_partitions(now(), now())", ()),
    "every account":
        ("SELECT count(*) FROM holds", ()),
    "two groups in one statement":
        ("SELECT account_id FROM identifier_holders WHERE value = $1"
         " UNION ALL SELECT account_id FROM accounts WHERE account_id = $2", ("+33611000001", "a")),
}


@pytest.mark.parametrize("shape", FAN_OUT)
async def test_the_check_refuses_what_citus_would_not_route(database_url, shape):
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        query, args = FAN_OUT[shape]
        _, problems = await unrouted(conn, query, args, await parents(conn))
    finally:
        await conn.close()
    assert problems


async def test_a_read_the_plans_do_not_show_fails_the_check(database_url):
    """A table read inside a function does not appear in the plan of the statement calling it."""
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        async with conn.transaction():
            await conn.execute("CREATE FUNCTION peek(id text) RETURNS boolean LANGUAGE plpgsql AS"
                               " $$ BEGIN RETURN EXISTS (SELECT 1 FROM accounts WHERE username = id); END $$")
            with pytest.raises(AssertionError, match="scanned by statements the check did not see"):
                await check_lookup(conn, lambda c: c.fetchval("SELECT peek($1)", "a"))
    finally:
        await conn.close()


def test_conditions_split_into_their_top_level_terms():
    assert conjuncts("((account_id = 'a)'::text) AND (observed_at >= 'x'::timestamp with time zone))") == [
        "(account_id = 'a)'::text)", "(observed_at >= 'x'::timestamp with time zone)"]
    assert routes_on("(account_id = ANY ('{a,b}'::text[]))", "account_id", "s")
    assert routes_on("((s.account_id = 'a'::text) AND (s.observed_at >= 'x'::timestamp with time zone))",
                     "account_id", "s")
    assert not routes_on("((account_id = 'a'::text) OR (username = 'b'::text))", "account_id", "accounts")
    assert not routes_on("(account_id = d.account_id)", "account_id", "p")


async def directory(conn) -> set[tuple]:
    return {tuple(r) for r in await conn.fetch("SELECT kind, value, account_id, changed_at FROM identifier_holders")}


async def histories(conn) -> set[tuple]:
    """The non-null change points, as the directory should list them."""
    return {tuple(r) for r in await conn.fetch(
        "SELECT 'phone_number', phone_number, account_id, changed_at FROM phone_changes"
        " WHERE phone_number IS NOT NULL UNION ALL"
        " SELECT 'username', username, account_id, changed_at FROM username_changes WHERE username IS NOT NULL")}


async def test_the_migration_lists_a_store_s_existing_change_points(database_url, tmp_path):
    for version, path in SERVICE.migrations[-1].files():  # the store as it was before migration 006
        if version < 6:
            shutil.copy(path, tmp_path)
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations[:-1],
                                                MigrationSet(SERVICE.migrations[-1].component, tmp_path)])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        await conn.execute(
            "INSERT INTO phone_changes VALUES ('a', now() - interval '9 days', '+33611000001'),"
            " ('a', now() - interval '5 days', NULL), ('b', now() - interval '3 days', '+33611000001');"
            " INSERT INTO username_changes VALUES ('a', now() - interval '9 days', 'alice')")
        stored = await histories(conn)
        await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
        assert len(stored) == 3 and await directory(conn) == stored
        found = await store.lookup_suspect(conn, store.Suspect("c", None, "+33611000001", None, ago(10), ago(0)))
        assert found.candidates == {"phone_number": {"a", "b"}}
    finally:
        await conn.close()


async def test_the_directory_holds_exactly_the_stored_change_points(database_url):
    """Written with the change points, purged with them: what a lookup by value finds is what the histories say."""
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    pool = await create_pool(database_url, SERVICE.schema, 1)
    tag = uuid.uuid4().hex[:6]
    a, b = f"a-{tag}", f"b-{tag}"

    try:
        async with pool.acquire() as conn:
            await store.record_account_updates(conn, [
                (account_update(a, "+33611000001", ago(500), "old"), "old", "+33611000001"),
                (account_update(a, "+33611000001", ago(450), "old"), "old", "+33611000001"),  # repeats: not stored
                (account_update(a, None, ago(420)), None, None),  # the number dropped: no directory entry
                (account_update(a, "+33611000002", ago(20), "new"), "new", "+33611000002"),
                (account_update(b, "+33611000001", ago(300)), None, "+33611000001"),
            ])
            await store.record_account_updates(conn, [  # replayed: nothing new anywhere
                (account_update(b, "+33611000001", ago(300)), None, "+33611000001")])
            written = await directory(conn)
            assert written == await histories(conn)
            assert {(k, v, acct) for k, v, acct, _ in written} == {
                ("phone_number", "+33611000001", a), ("username", "old", a), ("phone_number", "+33611000002", a),
                ("username", "new", a), ("phone_number", "+33611000001", b)}

            purged = await store.purge_superseded_identifiers(conn, ago(365), ago(0))
            left = await directory(conn)
            assert purged > 0 and left == await histories(conn)
            assert ("phone_number", "+33611000001", a) not in {(k, v, acct) for k, v, acct, _ in left}
            # The number's former holder is gone from the store: a lookup by it finds only b.
            found = await store.lookup_suspect(conn, store.Suspect("c", None, "+33611000001", None, START, END))
            assert found.candidates == {"phone_number": {b}}
    finally:
        await pool.close()
