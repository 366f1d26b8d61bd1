"""The subscriber store and disclosure's own tables: SQL only, list-shaped where it can be.

Writers take lists and send one statement per list (unnest): the subscriber feed's batch
handler pays one round trip per kind of row for a whole batch.
What a decision needs is read in three statements keyed as the store distributes (`lookup_suspect`;
`lookup_suspects` for a whole batch of decisions, the consumer's prefetch, in the same three) and
a whole call's effects written in one (`record_effects`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.contract.events import SubscriberAccountUpdated

from disclosure.package import Session
from disclosure.subscribers import Change, holders_during, latest_per_account, thin_changes

WEEK = timedelta(days=7)  # the sessions' partitions (migration 004)

# --- writing the feed -------------------------------------------------------------

_UPSERT_ACCOUNTS = """
INSERT INTO accounts (account_id, username, country, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (account_id) DO UPDATE SET
  username = EXCLUDED.username, country = EXCLUDED.country, updated_at = EXCLUDED.updated_at
WHERE accounts.updated_at <= EXCLUDED.updated_at"""

# A change point is stored unless the one just before it already says the same; one that gives
# the account a value is written to the identifiers' directory too (migration 006), in the same
# statement, so the directory holds exactly the stored points.
_ADD_CHANGES = """
WITH added AS (
  INSERT INTO {table} (account_id, changed_at, {column})
  SELECT u.account_id, u.changed_at, u.value
  FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(account_id, changed_at, value)
  WHERE (SELECT p.{column} IS DISTINCT FROM u.value FROM {table} p
         WHERE p.account_id = u.account_id AND p.changed_at <= u.changed_at
         ORDER BY p.changed_at DESC LIMIT 1) IS NOT FALSE
  ON CONFLICT (account_id, changed_at) DO NOTHING
  RETURNING account_id, changed_at, {column} AS value)
INSERT INTO identifier_holders (value, kind, account_id, changed_at)
SELECT value, '{column}', account_id, changed_at FROM added WHERE value IS NOT NULL
ON CONFLICT DO NOTHING"""
# kind (the suspect's identifier, and identifier_holders.kind) -> its history table
HISTORIES = {"phone_number": "phone_changes", "username": "username_changes"}


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
    for column, place in (("phone_number", 2), ("username", 1)):
        changes = thin_changes([Change(u[0].account_id, u[0].updated_at, u[place]) for u in updates])
        await conn.execute(_ADD_CHANGES.format(table=HISTORIES[column], column=column), [c.account_id for c in changes],
                           [c.changed_at for c in changes], [c.value for c in changes])


async def record_sessions(conn: asyncpg.Connection, sessions: list[Session]) -> None:
    """One statement for any number of sessions; a session already stored is a no-op. A session whose
    week has no partition lands in `sessions_default` (migration 004), never an error."""
    await conn.execute(
        "INSERT INTO sessions (account_id, observed_at, ip)"
        " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::inet[]) ON CONFLICT DO NOTHING",
        [s.account_id for s in sessions], [s.observed_at for s in sessions], [s.ip for s in sessions])


# --- reading for a case -----------------------------------------------------------
# A lookup reads the store in up to three statements, each keyed the way the store distributes
# on Citus (docs/citus.md), so that each reaches only the shards of the keys it names:
#   1. by identifier: the directory's entries for the suspects' phone numbers and usernames
#      (identifier_holders, by value), with whether each case is already acted on or withdrawn
#      (reference tables);
#   2. by account: the accounts named or found in 1 and their identifier histories;
#   3. by account: the sessions in the period of the accounts each suspect designates.
# Which accounts an identifier designates during a period is decided in between, from the
# candidates' whole histories, by the domain rule (subscribers.holders_during). No statement
# reads one table with keys taken from another: every key is a parameter, known before it runs.

_BY_IDENTIFIER = """
SELECT 'acted' AS kind, case_id AS value, NULL::text AS account_id, NULL::timestamptz AS changed_at
  FROM cases WHERE case_id = ANY($1::text[])
UNION ALL SELECT 'withdrawn', case_id, NULL, NULL FROM withdrawals WHERE case_id = ANY($1::text[])
UNION ALL SELECT kind, value, account_id, changed_at FROM identifier_holders WHERE value = ANY($2::text[])"""

_BY_ACCOUNT = """
SELECT 'account' AS kind, account_id, NULL::timestamptz AS changed_at, NULL::text AS value
  FROM accounts WHERE account_id = ANY($1::text[])
UNION ALL SELECT 'phone_number', account_id, changed_at, phone_number FROM phone_changes
  WHERE account_id = ANY($1::text[])
UNION ALL SELECT 'username', account_id, changed_at, username FROM username_changes
  WHERE account_id = ANY($1::text[])"""

# Accounts' sessions in [start, end]: the live ones (an index-only range scan of the primary key
# in each weekly partition the period meets, the others pruned) and those kept aside under a hold.
# UNION, not UNION ALL: a session re-sent after its week was dropped may be in both for a while.
_SESSIONS_IN_PERIOD = """
SELECT account_id, observed_at, ip FROM sessions
 WHERE account_id = {accounts} AND observed_at >= {start} AND observed_at <= {end}
UNION
SELECT account_id, observed_at, ip FROM held_sessions
 WHERE account_id = {accounts} AND observed_at >= {start} AND observed_at <= {end}"""

# The sessions of accounts $1 in [$2, $3], and which of accounts $4 have any session at all
# (an account id is known by its sessions as well as by its account row).
_SESSIONS = """
SELECT 'session' AS kind, account_id, observed_at, host(ip) AS ip FROM (""" + _SESSIONS_IN_PERIOD.format(
    accounts="ANY($1::text[])", start="$2", end="$3") + """) s
UNION ALL SELECT 'seen', account_id, NULL, NULL FROM (
  SELECT account_id FROM sessions WHERE account_id = ANY($4::text[])
  UNION SELECT account_id FROM held_sessions WHERE account_id = ANY($4::text[])) seen"""


@dataclass
class SuspectLookup:
    acted: bool  # the case is already acted on
    candidates: dict[str, set[str]]  # identifier given -> the accounts it designates during the period
    phone_changes: list[Change]  # of every designated account (build_package keeps the resolved one's)
    sessions: list[Session]  # of every designated account, in the period
    withdrawn: bool = False  # the authority withdrew the request (legal.requests.withdrawn)


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

    def identifiers(self) -> dict[str, str]:
        """kind -> value of the phone number and username given (identifier_holders.kind)."""
        return {kind: value for kind, value in (("phone_number", self.phone_number), ("username", self.username))
                if value is not None}


async def lookup_suspect(conn: asyncpg.Connection, suspect: Suspect) -> SuspectLookup:
    return (await lookup_suspects(conn, [suspect]))[0]


async def lookup_suspects(conn: asyncpg.Connection, suspects: list[Suspect]) -> list[SuspectLookup]:
    """What act_on_decisions needs for each of `suspects` (same order): whether its case is acted on or
    withdrawn, the accounts its identifiers designate during its period (a null identifier designates
    nobody), and the phone history and sessions in the period of every designated account, so the
    resolved one's are at hand. At most three statements for the whole batch (see above)."""
    if not suspects:
        return []
    # 1. By identifier: per (kind, value), the accounts with a change point to it, and when.
    acted, withdrawn, holders = set(), set(), {}
    for kind, value, account, at in await conn.fetch(
            _BY_IDENTIFIER, sorted({s.case_id for s in suspects}),
            sorted({v for s in suspects for v in s.identifiers().values()})):
        if kind in ("acted", "withdrawn"):
            (acted if kind == "acted" else withdrawn).add(value)
        else:
            holders.setdefault((kind, value), []).append((account, at))
    # Per suspect, kind -> the accounts that took the value by the period's end.
    found = [{kind: {a for a, at in holders.get((kind, value), []) if at <= s.end}
              for kind, value in s.identifiers().items()} for s in suspects]

    # 2. By account: the candidates and the named accounts, their rows and identifier histories.
    named = {s.account_id for s in suspects if s.account_id is not None}
    listed: set[str] = set()
    histories: dict[str, dict[str, list[Change]]] = {"phone_number": {}, "username": {}}
    if accounts := named.union(*(a for f in found for a in f.values())):
        for kind, account, at, value in await conn.fetch(_BY_ACCOUNT, sorted(accounts)):
            if kind == "account":
                listed.add(account)
            else:
                histories[kind].setdefault(account, []).append(Change(account, at, value))
    lookups = []
    for s, f in zip(suspects, found):
        candidates = {kind: set() for kind in ("account_id", "phone_number", "username")
                      if getattr(s, kind) is not None or kind in s.unusable}
        for kind, value in s.identifiers().items():
            candidates[kind] = holders_during((c for a in f[kind] for c in histories[kind].get(a, [])),
                                              value, s.start, s.end)
        lookups.append(SuspectLookup(s.case_id in acted, candidates, [], [], s.case_id in withdrawn))

    # 3. By account: the sessions of the accounts designated (or named: an account id without an
    # account row is known by its sessions, asked here too) over the batch's periods, each
    # suspect's kept to its own period below.
    reading = [(s, read) for s, lookup in zip(suspects, lookups)
               if (read := set().union(*lookup.candidates.values(), {s.account_id} - {None}))]
    sessions: dict[str, list[Session]] = {}
    seen: set[str] = set()
    if reading:
        for kind, account, at, ip in await conn.fetch(
                _SESSIONS, sorted(set().union(*(a for _, a in reading))), min(s.start for s, _ in reading),
                max(s.end for s, _ in reading), sorted(named - listed)):
            if kind == "seen":
                seen.add(account)
            else:
                sessions.setdefault(account, []).append(Session(account, ip, at))
    for s, lookup in zip(suspects, lookups):
        if s.account_id is not None and (s.account_id in listed or s.account_id in seen):
            lookup.candidates["account_id"] = {s.account_id}
        designated = sorted(set().union(*lookup.candidates.values()))
        lookup.phone_changes = [c for a in designated for c in histories["phone_number"].get(a, [])]
        lookup.sessions = [x for a in designated for x in sessions.get(a, []) if s.start <= x.observed_at <= s.end]
    return lookups


async def phone_changes_of(conn: asyncpg.Connection, account_id: str) -> list[Change]:
    rows = await conn.fetch(
        "SELECT changed_at, phone_number FROM phone_changes WHERE account_id = $1 ORDER BY changed_at", account_id)
    return [Change(account_id, r["changed_at"], r["phone_number"]) for r in rows]


async def sessions_of(conn: asyncpg.Connection, account_id: str, start: datetime, end: datetime) -> list[Session]:
    """Index-only range scans of the primary key (account_id, observed_at, ip), held sessions included."""
    rows = await conn.fetch(
        "SELECT observed_at, host(ip) AS ip FROM (" + _SESSIONS_IN_PERIOD.format(
            accounts="$1", start="$2", end="$3") + ") s ORDER BY observed_at", account_id, start, end)
    return [Session(account_id, r["ip"], r["observed_at"]) for r in rows]


# --- writing a decision's effects -----------------------------------------------------

class CaseEffect(NamedTuple):
    """A decision's effect as written: its case, and its hold (preserved) or its package and notice
    (disclosed; no notice when `due_at` is None: the authority informs the person). generated_at = decided_at."""
    case_id: str
    request_id: str
    authority_id: str
    kind: str
    outcome: str
    reason: str | None
    decided_at: datetime
    account_id: str | None = None
    hold_until: datetime | None = None
    sealed: bytes | None = None  # the sealed box
    sha256: str | None = None
    signature: str | None = None
    due_at: datetime | None = None
    emitted_at: datetime | None = None


_RECORD_EFFECTS = """
WITH e AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::timestamptz[], $8::text[], $9::timestamptz[], $10::bytea[], $11::text[], $12::text[],
                                $13::timestamptz[], $14::timestamptz[])
           AS u(case_id, request_id, authority_id, kind, outcome, reason, decided_at, account_id, hold_until,
                sealed, sha256, signature, due_at, emitted_at)),
c AS (INSERT INTO cases (case_id, request_id, authority_id, kind, outcome, reason, decided_at)
      SELECT case_id, request_id, authority_id, kind, outcome, reason, decided_at FROM e
      ON CONFLICT (case_id) DO NOTHING RETURNING case_id),
h AS (INSERT INTO holds (case_id, account_id, hold_until, placed_at)
      SELECT e.case_id, e.account_id, e.hold_until, e.decided_at FROM e JOIN c USING (case_id)
      WHERE e.outcome = 'preserved'),
p AS (INSERT INTO packages (case_id, authority_id, account_id, generated_at, sealed, sha256, signature)
      SELECT e.case_id, e.authority_id, e.account_id, e.decided_at, e.sealed, e.sha256, e.signature
      FROM e JOIN c USING (case_id) WHERE e.outcome = 'disclosed'),
n AS (INSERT INTO notices (case_id, account_id, due_at, emitted_at)
      SELECT e.case_id, e.account_id, e.due_at, e.emitted_at FROM e JOIN c USING (case_id)
      WHERE e.outcome = 'disclosed' AND e.due_at IS NOT NULL)
SELECT case_id FROM c
"""


async def record_effects(conn: asyncpg.Connection, effects: list[CaseEffect]) -> set[str]:
    """The effects' cases with their holds, packages and notices, in one statement; the ids of the cases
    written (a case already there is not, and nothing of its effect is)."""
    columns = list(zip(*effects))
    return {r["case_id"] for r in await conn.fetch(_RECORD_EFFECTS, *columns)}


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
    """Change points whose interval ended before `cutoff` (a later one is also older), with their
    entries in the identifiers' directory, in the same statement."""
    purged = 0
    for kind, table in HISTORIES.items():
        count = await conn.fetchval(
            f"WITH purged AS (DELETE FROM {table} p WHERE p.changed_at < $1"
            f"  AND EXISTS (SELECT 1 FROM {table} q WHERE q.account_id = p.account_id"
            "               AND q.changed_at > p.changed_at AND q.changed_at < $1)"
            "  AND NOT " + _HOLD_IN_FORCE.format(alias="p", now="$2") +
            f"  RETURNING p.account_id, p.changed_at, p.{kind} AS value),"
            " unlisted AS (DELETE FROM identifier_holders h USING purged"
            f"  WHERE h.value = purged.value AND h.kind = '{kind}' AND h.account_id = purged.account_id"
            "   AND h.changed_at = purged.changed_at)"
            " SELECT count(*) FROM purged", cutoff, now)
        purged += count
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
