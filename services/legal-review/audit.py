"""Legal review's audit chain: every case state change, signed and hash-chained (warden/audit.py).

Entries are appended in the transaction of the change they record; a checkpoint of the chain's
head goes out with every transaction that decides a case (one per consumer batch, from the
handler or the review) and every WARDEN_AUDIT_CHECKPOINT_INTERVAL_S when the head moved
(publish_checkpoints).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from warden import audit
from warden.audit import (
    COLUMNS, GENESIS, AuditEntry, Break, ChainWalk, entry_hash, entry_values, first_break, placeholders,
)

__all__ = ["COLUMNS", "GENESIS", "AuditEntry", "Break", "Chain", "ChainWalk", "append",
           "case_entries", "entry_hash", "entry_values", "first_break", "lock_chain", "placeholders", "verify_chain"]
SERVICE = "legal-review"
SCHEMA = "legal_review"


class Chain(audit.Chain):
    service = SERVICE
    lock = "warden-legal-review-audit"


publish_checkpoints = audit.checkpoint_publisher(Chain)


async def lock_chain(conn: asyncpg.Connection) -> None:
    """Take the append lock for the rest of the transaction (re-entrant). Transactions that lock
    existing case rows take it first, so chain and row locks are always taken in the same order."""
    await Chain().lock_chain(conn)


async def append(conn: asyncpg.Connection, case_id: str | None, action: str, actor: str, at: datetime,
                 detail: dict[str, Any], chain: Chain | None = None) -> AuditEntry:
    """Append in the caller's transaction; the advisory lock serialises writers until it commits."""
    return await audit.append(conn, chain or Chain(), case_id, action, actor, at, detail)


async def case_entries(conn: asyncpg.Connection, case_id: str) -> list[AuditEntry]:
    rows = await conn.fetch("SELECT * FROM audit_log WHERE case_id = $1 ORDER BY seq", case_id)
    return [audit.entry_of(r) for r in rows]


async def verify_chain(conn: asyncpg.Connection, schema: str = SCHEMA) -> tuple[int, Break | None]:
    """The chain linked and signed by a configured audit key, without a checkpoint (`warden audit
    verify` also holds it to the latest published one)."""
    walk = ChainWalk(SERVICE, await audit.chain_id_of(conn, schema), audit.configured_public_keys())
    return await audit.verify_chain(conn, schema, walk)
