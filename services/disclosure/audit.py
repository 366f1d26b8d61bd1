"""Disclosure's audit chain (warden/audit.py): what disclosure did, signed and hash-chained.

Actions: `package.issued`, `hold.placed`, `case.closed_without_data`, `case.cancelled` (in the
transaction of the decision's effects), `notice.emitted` and `retention.purged` (in the job's transaction). The
entries hold ids, hashes, dates and counts: never a phone number, IP address or username.
A checkpoint of the chain's head goes out with every transaction that issues a package (once per
consumer batch), and every
WARDEN_AUDIT_CHECKPOINT_INTERVAL_S when the head moved (publish_checkpoints).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from warden import audit
from warden.contract.events import RequestApproved
from warden.runtime.service import Context

SERVICE = "disclosure"
SCHEMA = "disclosure"
ACTOR = "disclosure"
_INSERT_NEW = f"{audit.INSERT} ON CONFLICT DO NOTHING RETURNING seq"


class Chain(audit.Chain):
    service = SERVICE
    lock = "warden-disclosure-audit"


publish_checkpoints = audit.checkpoint_publisher(Chain)


async def record(ctx: Context, case_id: str | None, action: str, at: datetime, detail: dict[str, Any]) -> Chain:
    """Append an entry in the handler's transaction, on the chain its batch state holds."""
    chain: Chain = ctx.state.chain
    entry = await chain.next_entry(ctx.conn, case_id, action, ACTOR, at, detail)
    if await ctx.conn.fetchrow(_INSERT_NEW, *audit.entry_values(entry)) is None:
        raise RuntimeError(f"audit entry {entry.seq} already taken: the chain's tail moved under its lock")
    chain.appended(entry)
    return chain


def _decision(decision: RequestApproved) -> dict[str, Any]:
    return {"request_id": decision.request_id, "authority_id": decision.authority_id,
            "kind": decision.kind, "decided_by": decision.decided_by}


async def package_issued(ctx: Context, decision: RequestApproved, at: datetime, sha256: str,
                         notice_due_at: datetime | None, notice_emitted: bool) -> None:
    """Audit the package and publish the chain's head with it (same transaction, via the outbox)."""
    chain = await record(ctx, decision.case_id, "package.issued", at, {
        **_decision(decision), "data_categories": decision.data_categories,
        "period": decision.period.model_dump(mode="json"), "sha256": sha256,
        # None: the platform gives no notice (the issuing authority informs the person, notice.jurisdiction).
        "notice_due_at": notice_due_at.isoformat() if notice_due_at else None, "notice_emitted": notice_emitted})
    chain.checkpoint_at_commit(ctx)


async def hold_placed(ctx: Context, decision: RequestApproved, at: datetime, hold_until: datetime) -> None:
    await record(ctx, decision.case_id, "hold.placed", at, {**_decision(decision), "hold_until": hold_until.isoformat()})


async def closed_without_data(ctx: Context, decision: RequestApproved, at: datetime, reason: str) -> None:
    await record(ctx, decision.case_id, "case.closed_without_data", at, {**_decision(decision), "reason": reason})


async def case_cancelled(ctx: Context, decision: RequestApproved, at: datetime, reason: str) -> None:
    await record(ctx, decision.case_id, "case.cancelled", at, {**_decision(decision), "reason": reason})


async def notices_emitted(conn: asyncpg.Connection, notices: list[asyncpg.Record], at: datetime) -> None:
    """One entry per notice, in the job's transaction (which took lock_chain before the notices)."""
    chain, values = Chain(), []
    for notice in notices:
        entry = await chain.next_entry(conn, notice["case_id"], "notice.emitted", ACTOR, at,
                                       {"due_at": notice["due_at"].isoformat()})
        chain.appended(entry)
        values.append(audit.entry_values(entry))
    if values:
        await conn.executemany(audit.INSERT, values)


async def retention_purged(conn: asyncpg.Connection, at: datetime, cutoff: datetime, sessions: int,
                           identifier_changes: int) -> None:
    await audit.append(conn, Chain(), None, "retention.purged", ACTOR, at, {
        "cutoff": cutoff.isoformat(), "sessions": sessions, "identifier_changes": identifier_changes})


async def lock_chain(conn: asyncpg.Connection) -> None:
    """Jobs take the append lock before locking the rows they change: a job and a consumer batch never
    wait on each other in opposite orders."""
    await Chain().lock_chain(conn)
