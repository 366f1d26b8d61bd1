"""The subscriber store and disclosure's own tables: SQL only, list-shaped where it can be.

Writers take lists and send one statement per list (unnest), so a caller holding a
batch pays one round trip for it; the consumer loop calls them per event today.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

from warden.contract.events import SubscriberAccountUpdated

from disclosure.package import Session
from disclosure.subscribers import Change

# --- writing the feed -------------------------------------------------------------

_UPSERT_ACCOUNTS = """
INSERT INTO accounts (account_id, username, country, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (account_id) DO UPDATE SET
  username = EXCLUDED.username, country = EXCLUDED.country, updated_at = EXCLUDED.updated_at
WHERE accounts.updated_at <= EXCLUDED.updated_at"""

# A change point is stored unless the one just before it already says the same.
_ADD_CHANGES = """
INSERT INTO {table} (account_id, changed_at, {column})
SELECT u.account_id, u.changed_at, u.value
FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(account_id, changed_at, value)
WHERE (SELECT p.{column} IS DISTINCT FROM u.value FROM {table} p
       WHERE p.account_id = u.account_id AND p.changed_at <= u.changed_at
       ORDER BY p.changed_at DESC LIMIT 1) IS NOT FALSE
ON CONFLICT (account_id, changed_at) DO NOTHING"""


async def record_account_updates(conn: asyncpg.Connection, updates: list[tuple[SubscriberAccountUpdated,
                                                                                str | None, str | None]]) -> None:
    """`updates`: (event, normalised username, E.164 phone number) each."""
    ids = [u.account_id for u, _, _ in updates]
    times = [u.updated_at for u, _, _ in updates]
    usernames = [name for _, name, _ in updates]
    phones = [phone for _, _, phone in updates]
    await conn.execute(_UPSERT_ACCOUNTS, ids, usernames, [u.country for u, _, _ in updates], times)
    await conn.execute(_ADD_CHANGES.format(table="phone_changes", column="phone_number"), ids, times, phones)
    await conn.execute(_ADD_CHANGES.format(table="username_changes", column="username"), ids, times, usernames)


async def record_sessions(conn: asyncpg.Connection, sessions: list[Session]) -> None:
    await conn.execute(
        "INSERT INTO sessions (account_id, observed_at, ip)"
        " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::inet[]) ON CONFLICT DO NOTHING",
        [s.account_id for s in sessions], [s.observed_at for s in sessions], [s.ip for s in sessions])


# --- reading for a case -----------------------------------------------------------

# Accounts whose derived interval for `value` meets [start, end]; same rule as Held.overlaps.
_HELD_DURING = """
SELECT DISTINCT account_id FROM (
  SELECT account_id, {column} AS value, changed_at,
         lead(changed_at) OVER (PARTITION BY account_id ORDER BY changed_at) AS until
  FROM {table}
  WHERE account_id IN (SELECT account_id FROM {table} WHERE {column} = $1)
) held
WHERE value = $1 AND changed_at <= $3 AND (until IS NULL OR until > $2)"""


async def accounts_known(conn: asyncpg.Connection, account_id: str) -> set[str]:
    known = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = $1)"
        " OR EXISTS (SELECT 1 FROM sessions WHERE account_id = $1)", account_id)
    return {account_id} if known else set()


async def accounts_holding(conn: asyncpg.Connection, kind: str, value: str, start: datetime, end: datetime
                           ) -> set[str]:
    """Accounts that held this phone number or username at some instant of [start, end]."""
    table, column = {"phone_number": ("phone_changes", "phone_number"),
                     "username": ("username_changes", "username")}[kind]
    rows = await conn.fetch(_HELD_DURING.format(table=table, column=column), value, start, end)
    return {r["account_id"] for r in rows}


async def phone_changes_of(conn: asyncpg.Connection, account_id: str) -> list[Change]:
    rows = await conn.fetch(
        "SELECT changed_at, phone_number FROM phone_changes WHERE account_id = $1 ORDER BY changed_at", account_id)
    return [Change(account_id, r["changed_at"], r["phone_number"]) for r in rows]


async def sessions_of(conn: asyncpg.Connection, account_id: str, start: datetime, end: datetime) -> list[Session]:
    """An index-only range scan of the primary key (account_id, observed_at, ip)."""
    rows = await conn.fetch(
        "SELECT observed_at, host(ip) AS ip FROM sessions"
        " WHERE account_id = $1 AND observed_at >= $2 AND observed_at <= $3", account_id, start, end)
    return [Session(account_id, r["ip"], r["observed_at"]) for r in rows]


# --- retention ----------------------------------------------------------------------

_NOT_HELD = "NOT EXISTS (SELECT 1 FROM holds h WHERE h.account_id = {alias}.account_id AND h.hold_until > $2)"


async def purge_sessions(conn: asyncpg.Connection, cutoff: datetime, now: datetime, limit: int) -> int:
    """Delete up to `limit` sessions older than `cutoff` of accounts with no hold in force."""
    status = await conn.execute(
        "DELETE FROM sessions WHERE ctid = ANY(ARRAY("
        " SELECT s.ctid FROM sessions s WHERE s.observed_at < $1 AND " + _NOT_HELD.format(alias="s") +
        " LIMIT $3))", cutoff, now, limit)
    return int(status.split()[-1])


async def purge_superseded_identifiers(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """Change points whose interval ended before `cutoff` (a later one is also older)."""
    purged = 0
    for table in ("phone_changes", "username_changes"):
        status = await conn.execute(
            f"DELETE FROM {table} p WHERE p.changed_at < $1"
            f" AND EXISTS (SELECT 1 FROM {table} q WHERE q.account_id = p.account_id"
            "              AND q.changed_at > p.changed_at AND q.changed_at < $1)"
            " AND " + _NOT_HELD.format(alias="p"), cutoff, now)
        purged += int(status.split()[-1])
    return purged


# --- notices and metrics --------------------------------------------------------------

async def take_due_notices(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> list[asyncpg.Record]:
    """Lock and mark due notices emitted; the caller writes their events in the same transaction."""
    return await conn.fetch(
        "UPDATE notices SET emitted_at = $1 WHERE case_id IN ("
        " SELECT case_id FROM notices WHERE emitted_at IS NULL AND due_at <= $1"
        " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING case_id, account_id, due_at", now, limit)


async def counts(conn: asyncpg.Connection, now: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT (SELECT count(*) FROM packages) AS packages,"
        " (SELECT count(*) FROM cases WHERE outcome = 'no_data') AS no_data,"
        " (SELECT count(*) FROM holds WHERE hold_until > $1) AS holds_active,"
        " (SELECT count(*) FROM notices WHERE emitted_at IS NULL) AS notices_pending", now)
