"""The subscriber store and disclosure's own tables: SQL only, list-shaped where it can be.

Writers take lists and send one statement per list (unnest): the subscriber feed's batch
handler pays one round trip per kind of row for a whole batch.
What a decision needs is read in one statement (`lookup_suspect`; `lookup_suspects` for a
whole batch of decisions, the consumer's prefetch) and its effects written in one
(`record_disclosure`, `record_hold`, `record_case`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.contract.events import SubscriberAccountUpdated

from disclosure.package import Session
from disclosure.subscribers import Change, latest_per_account, thin_changes

WEEK = timedelta(days=7)  # the sessions' partitions (migration 004)

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
    """`updates`: (event, normalised username, E.164 phone number) each, in the feed's order.

    Three statements whatever the number of updates. An upsert may touch a row once per
    statement, so the accounts are folded first (latest_per_account); the change points of
    one account are thinned as the statement would thin them one by one (thin_changes).
    """
    latest = latest_per_account([(u.account_id, u.updated_at, (name, u.country)) for u, name, _ in updates])
    await conn.execute(_UPSERT_ACCOUNTS, [a for a, _, _ in latest], [v[0] for _, _, v in latest],
                       [v[1] for _, _, v in latest], [t for _, t, _ in latest])
    for table, column, place in (("phone_changes", "phone_number", 2), ("username_changes", "username", 1)):
        changes = thin_changes([Change(u[0].account_id, u[0].updated_at, u[place]) for u in updates])
        await conn.execute(_ADD_CHANGES.format(table=table, column=column), [c.account_id for c in changes],
                           [c.changed_at for c in changes], [c.value for c in changes])


async def record_sessions(conn: asyncpg.Connection, sessions: list[Session]) -> None:
    """One statement for any number of sessions; a session already stored is a no-op. A session whose
    week has no partition lands in `sessions_default` (migration 004), never an error."""
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
  WHERE account_id IN (SELECT account_id FROM {table} WHERE {column} = {value})
) held
WHERE value = {value} AND changed_at <= {end} AND (until IS NULL OR until > {start})"""
_COLUMNS = {"phone_number": ("phone_changes", "phone_number"), "username": ("username_changes", "username")}


async def accounts_known(conn: asyncpg.Connection, account_id: str) -> set[str]:
    known = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = $1)"
        " OR EXISTS (SELECT 1 FROM sessions WHERE account_id = $1)", account_id)
    return {account_id} if known else set()


async def accounts_holding(conn: asyncpg.Connection, kind: str, value: str, start: datetime, end: datetime
                           ) -> set[str]:
    """Accounts that held this phone number or username at some instant of [start, end]."""
    table, column = _COLUMNS[kind]
    rows = await conn.fetch(_HELD_DURING.format(table=table, column=column, value="$1", start="$2", end="$3"),
                            value, start, end)
    return {r["account_id"] for r in rows}


@dataclass
class SuspectLookup:
    acted: bool  # the case is already acted on
    candidates: dict[str, set[str]]  # identifier given -> the accounts it designates during the period
    phone_changes: list[Change]  # of every designated account (build_package keeps the resolved one's)
    sessions: list[Session]  # of every designated account, in the period
    withdrawn: bool = False  # the authority withdrew the request (legal.requests.withdrawn)


# An account's sessions in [start, end]: the live ones (an index-only range scan of the primary key
# in each weekly partition the period meets, the others pruned) and those kept aside under a hold.
# UNION, not UNION ALL: a session re-sent after its week was dropped may be in both for a while.
_SESSIONS_IN_PERIOD = """
SELECT observed_at, ip FROM sessions
 WHERE account_id = {account_id} AND observed_at >= {start} AND observed_at <= {end}
UNION
SELECT observed_at, ip FROM held_sessions
 WHERE account_id = {account_id} AND observed_at >= {start} AND observed_at <= {end}"""


# What act_on_decision needs, in one round trip: whether the case is already acted on or withdrawn, the
# accounts the suspect's identifiers designate (the queries of accounts_known / accounts_holding;
# a null identifier designates nobody), and the phone history and sessions in the period of each
# designated account, so the resolved one's are at hand (phone_changes_of, sessions_of).
def _lookup_sql(case_id: str, account_id: str, phone_number: str, username: str, start: str, end: str) -> str:
    return """
WITH by_phone AS (""" + _HELD_DURING.format(table="phone_changes", column="phone_number", value=phone_number,
                                           start=start, end=end) + """),
by_username AS (""" + _HELD_DURING.format(table="username_changes", column="username", value=username,
                                          start=start, end=end) + f"""),
known AS (
  SELECT {account_id}::text AS account_id
  WHERE EXISTS (SELECT 1 FROM accounts WHERE account_id = {account_id})
     OR EXISTS (SELECT 1 FROM sessions WHERE account_id = {account_id})
     OR EXISTS (SELECT 1 FROM held_sessions WHERE account_id = {account_id})),
designated AS (
  SELECT account_id FROM by_phone UNION SELECT account_id FROM by_username UNION SELECT account_id FROM known)
SELECT 'acted' AS kind, case_id AS account_id, NULL::timestamptz AS at, NULL::text AS value
  FROM cases WHERE case_id = {case_id}
UNION ALL SELECT 'withdrawn', case_id, NULL, NULL FROM withdrawals WHERE case_id = {case_id}
UNION ALL SELECT 'account_id', account_id, NULL, NULL FROM known
UNION ALL SELECT 'phone_number', account_id, NULL, NULL FROM by_phone
UNION ALL SELECT 'username', account_id, NULL, NULL FROM by_username
UNION ALL SELECT 'phone_change', d.account_id, p.changed_at, p.phone_number
  FROM designated d, LATERAL (SELECT changed_at, phone_number FROM phone_changes
                              WHERE account_id = d.account_id) p
UNION ALL SELECT 'session', d.account_id, s.observed_at, host(s.ip)
  FROM designated d, LATERAL (""" + _SESSIONS_IN_PERIOD.format(account_id="d.account_id", start=start, end=end) + """) s"""


_LOOKUP_SUSPECT = _lookup_sql("$1", "$2", "$3", "$4", "$5", "$6")
# The same for a batch of suspects: each one's rows tagged with its place in the batch.
_LOOKUP_SUSPECTS = (
    "SELECT q.n, r.kind, r.account_id, r.at, r.value"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])"
    " WITH ORDINALITY AS q(case_id, account_id, phone_number, username, period_start, period_end, n),"
    " LATERAL (" + _lookup_sql("q.case_id", "q.account_id", "q.phone_number", "q.username", "q.period_start",
                               "q.period_end") + ") r")


@dataclass(frozen=True)
class Suspect:
    """A lookup's inputs: the case, the suspect's normalised identifiers (None: not given), the period.

    `unusable`: identifiers given that designate nobody once normalised (they still count as given).
    """
    case_id: str
    account_id: str | None
    phone_number: str | None
    username: str | None
    start: datetime
    end: datetime
    unusable: frozenset[str] = frozenset()


def _fold(suspect: Suspect, rows) -> SuspectLookup:
    given = {"account_id": suspect.account_id, "phone_number": suspect.phone_number, "username": suspect.username}
    candidates = {kind: set() for kind, value in given.items() if value is not None or kind in suspect.unusable}
    lookup = SuspectLookup(False, candidates, [], [])
    for kind, account, at, value in rows:
        if kind == "session":
            lookup.sessions.append(Session(account, value, at))
        elif kind == "phone_change":
            lookup.phone_changes.append(Change(account, at, value))
        elif kind == "acted":
            lookup.acted = True
        elif kind == "withdrawn":
            lookup.withdrawn = True
        else:
            lookup.candidates[kind].add(account)
    return lookup


async def lookup_suspect(conn: asyncpg.Connection, suspect: Suspect) -> SuspectLookup:
    rows = await conn.fetch(_LOOKUP_SUSPECT, suspect.case_id, suspect.account_id, suspect.phone_number,
                            suspect.username, suspect.start, suspect.end)
    return _fold(suspect, [tuple(r) for r in rows])


async def lookup_suspects(conn: asyncpg.Connection, suspects: list[Suspect]) -> list[SuspectLookup]:
    """lookup_suspect for each of `suspects`, in one statement; same order."""
    columns = list(zip(*((s.case_id, s.account_id, s.phone_number, s.username, s.start, s.end)
                         for s in suspects))) or [[]] * 6
    # Left to itself Postgres plans this statement anew for each batch (a custom plan per set of
    # arrays: ~0.6 ms, more than running it, measured with pg_stat_statements); one generic plan
    # serves every batch size. Only for this statement: the rest of the transaction plans as usual.
    # (If the statement fails, the transaction is rolled back, and the setting with it.)
    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    rows = await conn.fetch(_LOOKUP_SUSPECTS, *(list(c) for c in columns))
    await conn.execute("SET LOCAL plan_cache_mode TO DEFAULT")  # the server's or role's own setting again
    by_place: dict[int, list[tuple]] = {}
    for n, *row in rows:
        by_place.setdefault(n, []).append(tuple(row))
    return [_fold(suspect, by_place.get(place, [])) for place, suspect in enumerate(suspects, start=1)]


async def phone_changes_of(conn: asyncpg.Connection, account_id: str) -> list[Change]:
    rows = await conn.fetch(
        "SELECT changed_at, phone_number FROM phone_changes WHERE account_id = $1 ORDER BY changed_at", account_id)
    return [Change(account_id, r["changed_at"], r["phone_number"]) for r in rows]


async def sessions_of(conn: asyncpg.Connection, account_id: str, start: datetime, end: datetime) -> list[Session]:
    """Index-only range scans of the primary key (account_id, observed_at, ip), held sessions included."""
    rows = await conn.fetch(
        "SELECT observed_at, host(ip) AS ip FROM (" + _SESSIONS_IN_PERIOD.format(
            account_id="$1", start="$2", end="$3") + ") s ORDER BY observed_at", account_id, start, end)
    return [Session(account_id, r["ip"], r["observed_at"]) for r in rows]


# --- writing a decision's effects -----------------------------------------------------

_CASE = ("INSERT INTO cases (case_id, request_id, authority_id, kind, outcome, reason, decided_at)"
         " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (case_id) DO NOTHING RETURNING case_id")


# Each writer below: False (and nothing written) if the case is already there.

async def record_case(conn: asyncpg.Connection, case: tuple) -> bool:
    """`case`: (case_id, request_id, authority_id, kind, outcome, reason, decided_at)."""
    return await conn.fetchrow(_CASE, *case) is not None


async def record_hold(conn: asyncpg.Connection, case: tuple, account_id: str, hold_until: datetime) -> bool:
    """The case and its hold, in one statement."""
    return await conn.fetchrow(
        f"WITH c AS ({_CASE}) INSERT INTO holds (case_id, account_id, hold_until, placed_at)"
        " SELECT case_id, $8, $9, $7 FROM c RETURNING true", *case, account_id, hold_until) is not None


async def record_disclosure(conn: asyncpg.Connection, case: tuple, account_id: str, sealed: str, sha256: str,
                            signature: str, due_at: datetime | None, emitted_at: datetime | None) -> bool:
    """The case, its package and its notice (none when `due_at` is None: the authority informs the person),
    in one statement. generated_at = decided_at."""
    return await conn.fetchrow(
        f"WITH c AS ({_CASE}),"
        " p AS (INSERT INTO packages (case_id, authority_id, account_id, generated_at, sealed, sha256, signature)"
        "       SELECT case_id, $3, $8, $7, $9, $10, $11 FROM c),"
        " n AS (INSERT INTO notices (case_id, account_id, due_at, emitted_at)"
        "       SELECT case_id, $8, $12::timestamptz, $13::timestamptz FROM c WHERE $12::timestamptz IS NOT NULL)"
        " SELECT true FROM c",
        *case, account_id, sealed, sha256, signature, due_at, emitted_at) is not None


# --- retention ----------------------------------------------------------------------
# Sessions go a week at a time: a weekly partition whose end is past the cutoff is dropped
# (no row-by-row DELETE, no bloat, no vacuum), after the sessions of accounts under a hold in
# force are copied to held_sessions. Only the default partition, kept small, is deleted from.

_HOLD_IN_FORCE = "EXISTS (SELECT 1 FROM holds h WHERE h.account_id = {alias}.account_id AND h.hold_until > {now})"
_PARTITION_NAME = re.compile(r"sessions_(\d{8})")


async def create_session_partitions(conn: asyncpg.Connection, first_at: datetime, last_at: datetime) -> int:
    """The weekly partitions meeting [first_at, last_at] that are missing; how many were created."""
    return await conn.fetchval("SELECT create_session_partitions($1, $2)", first_at, last_at, timeout=600)


async def session_partitions(conn: asyncpg.Connection) -> list[tuple[str, datetime, datetime]]:
    """(name, start, end) of every weekly partition, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'sessions'::regclass")
    weeks = []
    for r in rows:
        match = _PARTITION_NAME.fullmatch(r["relname"])
        if match:
            start = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=timezone.utc)
            weeks.append((r["relname"], start, start + WEEK))
    return sorted(weeks, key=lambda w: w[1])


async def drop_expired_partition(conn: asyncpg.Connection, name: str, now: datetime) -> tuple[int, int]:
    """Copy the held accounts' sessions of partition `name` aside, then drop it: (sessions dropped, kept aside).

    The caller has checked that the whole week is past retention, and holds the audit chain's lock,
    which serialises replicas: a week another one dropped first is (0, 0). Driven by the holds in
    force (few), each one an index range scan of the partition."""
    if await conn.fetchval("SELECT to_regclass($1)", f'"{name}"') is None:
        return 0, 0
    kept = await conn.execute(
        f'INSERT INTO held_sessions (account_id, observed_at, ip) SELECT s.account_id, s.observed_at, s.ip'
        f' FROM (SELECT DISTINCT account_id FROM holds WHERE hold_until > $1) h'
        f' JOIN "{name}" s ON s.account_id = h.account_id ON CONFLICT DO NOTHING', now)
    rows = await conn.fetchval(f'SELECT count(*) FROM "{name}"')
    await conn.execute(f'ALTER TABLE sessions DETACH PARTITION "{name}"')
    await conn.execute(f'DROP TABLE "{name}"')
    return rows, int(kept.split()[-1])


async def purge_default_sessions(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """Sessions older than `cutoff` in the default partition: held ones copied aside, all deleted;
    how many went for good (those copied aside not counted)."""
    kept = await conn.execute(
        "INSERT INTO held_sessions (account_id, observed_at, ip) SELECT s.account_id, s.observed_at, s.ip"
        " FROM sessions_default s WHERE s.observed_at < $2 AND " + _HOLD_IN_FORCE.format(alias="s", now="$1") +
        " ON CONFLICT DO NOTHING", now, cutoff)
    status = await conn.execute("DELETE FROM sessions_default WHERE observed_at < $1", cutoff)
    return int(status.split()[-1]) - int(kept.split()[-1])


async def purge_held_sessions(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """Sessions kept aside whose account's holds have all ended, once past retention."""
    status = await conn.execute(
        "DELETE FROM held_sessions s WHERE s.observed_at < $1 AND NOT " + _HOLD_IN_FORCE.format(alias="s", now="$2"),
        cutoff, now)
    return int(status.split()[-1])


async def purge_superseded_identifiers(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """Change points whose interval ended before `cutoff` (a later one is also older)."""
    purged = 0
    for table in ("phone_changes", "username_changes"):
        status = await conn.execute(
            f"DELETE FROM {table} p WHERE p.changed_at < $1"
            f" AND EXISTS (SELECT 1 FROM {table} q WHERE q.account_id = p.account_id"
            "              AND q.changed_at > p.changed_at AND q.changed_at < $1)"
            " AND NOT " + _HOLD_IN_FORCE.format(alias="p", now="$2"), cutoff, now)
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


async def record_withdrawal(conn: asyncpg.Connection, case_id: str, request_id: str, authority_id: str,
                            withdrawn_at: datetime, at: datetime) -> tuple[bool, bool]:
    """(recorded now, the case was already acted on): False first when the withdrawal was recorded already."""
    row = await conn.fetchrow(
        """WITH recorded AS (
             INSERT INTO withdrawals (case_id, request_id, authority_id, withdrawn_at, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true AS new)
           SELECT EXISTS (SELECT 1 FROM recorded) AS new, EXISTS (SELECT 1 FROM cases WHERE case_id = $1) AS acted""",
        case_id, request_id, authority_id, withdrawn_at, at)
    return row["new"], row["acted"]
