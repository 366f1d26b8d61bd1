"""Hash-chained audit log: every case state change, each entry sealing the one before.

An entry's hash is the SHA-256 of the RFC 8785 canonical JSON of the entry (seq,
case_id, action, actor, at, detail, prev_hash). Changing, removing or reordering any
entry breaks the chain from there on; `verify_chain` names the first broken entry.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from warden.signing import canonical

GENESIS = "0" * 64
_APPEND_LOCK = "warden-legal-review-audit"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    case_id: str | None
    action: str
    actor: str
    at: datetime
    detail: dict[str, Any]
    prev_hash: str
    hash: str = ""


def entry_hash(entry: AuditEntry) -> str:
    document = {
        "seq": entry.seq,
        "case_id": entry.case_id,
        "action": entry.action,
        "actor": entry.actor,
        "at": entry.at.astimezone(timezone.utc).isoformat(),
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(canonical(document)).hexdigest()


@dataclass(frozen=True)
class Break:
    seq: int
    case_id: str | None
    problem: str


def check_entry(entry: AuditEntry, expected_seq: int, expected_prev: str) -> Break | None:
    """One link of the chain: in sequence, pointing at the previous hash, and unaltered."""
    if entry.seq != expected_seq:
        return Break(entry.seq, entry.case_id,
                     f"sequence gap: expected entry {expected_seq}, found {entry.seq} (entries removed)")
    if entry.prev_hash != expected_prev:
        return Break(entry.seq, entry.case_id, "prev_hash does not match the previous entry's hash")
    if entry_hash(entry) != entry.hash:
        return Break(entry.seq, entry.case_id, "hash does not match the entry's content (entry altered)")
    return None


class ChainWalk:
    """Checks entries one by one in chain order; `checked` counts them."""

    def __init__(self) -> None:
        self.expected_prev, self.expected_seq, self.checked = GENESIS, 1, 0

    def step(self, entry: AuditEntry) -> Break | None:
        self.checked += 1
        broken = check_entry(entry, self.expected_seq, self.expected_prev)
        if broken is None:
            self.expected_prev, self.expected_seq = entry.hash, entry.seq + 1
        return broken


def first_break(entries: Iterable[AuditEntry]) -> tuple[int, Break | None]:
    """Walk the chain in order: (entries checked, the first broken entry or None)."""
    walk = ChainWalk()
    for entry in entries:
        if broken := walk.step(entry):
            return walk.checked, broken
    return walk.checked, None


async def lock_chain(conn: asyncpg.Connection) -> None:
    """Take the append lock for the rest of the transaction (re-entrant). Transactions that lock
    existing case rows take it first, so chain and row locks are always taken in the same order."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _APPEND_LOCK)


class Chain:
    """The chain's tail as seen by a transaction that holds the append lock.

    The first `next_entry` takes the lock and reads the tail; while the lock is held nobody
    else appends, so later entries chain on without asking again. Keep one per transaction
    (or per consumer savepoint: Context.cache) and never past a rollback of the savepoint it
    learnt the tail in; `appended` only after the entry's INSERT succeeded.
    """

    def __init__(self) -> None:
        self.seq: int | None = None
        self.hash = GENESIS

    async def next_entry(self, conn: asyncpg.Connection, case_id: str | None, action: str, actor: str,
                         at: datetime, detail: dict[str, Any], after: AuditEntry | None = None) -> AuditEntry:
        """The entry that would come next (after `after`, itself not yet appended, when given); the caller
        inserts it (COLUMNS, entry_values) in the same statement as `after`, then calls `appended`."""
        if self.seq is None:
            await lock_chain(conn)
            last = await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            self.seq, self.hash = (last["seq"], last["hash"]) if last else (0, GENESIS)
        # Round-trip through JSON so the hash is over exactly what jsonb will give back.
        detail = json.loads(json.dumps(detail, default=str))
        seq, prev_hash = (after.seq, after.hash) if after is not None else (self.seq, self.hash)
        entry = AuditEntry(seq=seq + 1, case_id=case_id, action=action, actor=actor,
                           at=at, detail=detail, prev_hash=prev_hash)
        return AuditEntry(**{**entry.__dict__, "hash": entry_hash(entry)})

    def appended(self, entry: AuditEntry) -> None:
        self.seq, self.hash = entry.seq, entry.hash


COLUMNS = "seq, case_id, action, actor, at, detail, prev_hash, hash"


def entry_values(entry: AuditEntry) -> tuple:
    """The values of COLUMNS, in order (detail as JSON text: cast it with ::jsonb)."""
    return (entry.seq, entry.case_id, entry.action, entry.actor, entry.at, json.dumps(entry.detail),
            entry.prev_hash, entry.hash)


async def append(conn: asyncpg.Connection, case_id: str | None, action: str, actor: str, at: datetime,
                 detail: dict[str, Any], chain: Chain | None = None) -> AuditEntry:
    """Append in the caller's transaction; the advisory lock serialises writers until it commits."""
    chain = chain or Chain()
    entry = await chain.next_entry(conn, case_id, action, actor, at, detail)
    await conn.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
                       *entry_values(entry))
    chain.appended(entry)
    return entry


def batch_chain(cache: dict) -> Chain:
    """The Chain of a consumer savepoint (Context.cache)."""
    return cache.setdefault(("legal_review.audit", "chain"), Chain())


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(seq=row["seq"], case_id=str(row["case_id"]) if row["case_id"] else None,
                      action=row["action"], actor=row["actor"], at=row["at"], detail=json.loads(row["detail"]),
                      prev_hash=row["prev_hash"], hash=row["hash"])


async def read_chain(conn: asyncpg.Connection, schema: str = "legal_review") -> AsyncIterator[AuditEntry]:
    """The whole chain in order, from one read-only snapshot."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in conn.cursor(f'SELECT * FROM "{schema}".audit_log ORDER BY seq', prefetch=1000):
            yield _entry(row)


async def case_entries(conn: asyncpg.Connection, case_id: str) -> list[AuditEntry]:
    rows = await conn.fetch("SELECT * FROM audit_log WHERE case_id = $1 ORDER BY seq", case_id)
    return [_entry(r) for r in rows]


async def verify_chain(conn: asyncpg.Connection, schema: str = "legal_review") -> tuple[int, Break | None]:
    """Check the whole chain in one snapshot, streaming it: (entries checked, first break or None)."""
    walk = ChainWalk()
    async for entry in read_chain(conn, schema):
        if broken := walk.step(entry):
            return walk.checked, broken
    return walk.checked, None
