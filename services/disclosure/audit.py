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
from typing import TYPE_CHECKING, Any

import asyncpg

from warden import audit
from warden.contract.events import RequestApproved
from warden.runtime.service import Context

if TYPE_CHECKING:
    from disclosure.handlers import Effect

SERVICE = "disclosure"
SCHEMA = "disclosure"
ACTOR = "disclosure"


class Chain(audit.Chain):
    service = SERVICE
    lock = "warden-disclosure-audit"


publish_checkpoints = audit.checkpoint_publisher(Chain)


def _decision(decision: RequestApproved) -> dict[str, Any]:
    return {"request_id": decision.request_id, "authority_id": decision.authority_id,
            "kind": decision.kind, "decided_by": decision.decided_by}


def entry_of(effect: Effect) -> tuple[str, dict[str, Any]]:
    """The action and detail of a decision's effect."""
    decision = effect.decision
    if effect.outcome == "disclosed":
        return "package.issued", {
            **_decision(decision), "data_categories": decision.data_categories,
            "period": decision.period.model_dump(mode="json"), "sha256": effect.sealed.sha256,
            # None: the platform gives no notice (the issuing authority informs the person, notice.jurisdiction).
            "notice_due_at": effect.due_at.isoformat() if effect.due_at else None,
            "notice_emitted": effect.emitted_at is not None}
    if effect.outcome == "preserved":
        return "hold.placed", {**_decision(decision), "hold_until": effect.hold_until.isoformat()}
    if effect.outcome == "no_data":
        return "case.closed_without_data", {**_decision(decision), "reason": effect.reason}
    return "case.cancelled", {**_decision(decision), "reason": effect.reason}


async def record_effects(ctx: Context, effects: list[Effect]) -> None:
    """One entry per effect, in order, on the chain the batch state holds, in one statement of the handler's
    transaction, the last one signed for them all; the chain's head goes out with it when a package was
    issued."""
    chain: Chain = ctx.state.chain
    entries = []
    for n, effect in enumerate(effects, 1):
        action, detail = entry_of(effect)
        entry = await chain.next_entry(ctx.conn, effect.decision.case_id, action, ACTOR, effect.at, detail,
                                       after=entries[-1] if entries else None, signed=n == len(effects))
        entries.append(entry)
    await ctx.conn.executemany(audit.INSERT, [audit.entry_values(e) for e in entries])
    chain.appended(entries[-1])
    if any(effect.outcome == "disclosed" for effect in effects):
        chain.checkpoint_at_commit(ctx)


async def notices_emitted(conn: asyncpg.Connection, notices: list[asyncpg.Record], at: datetime) -> None:
    """One entry per notice, in the job's transaction (which took lock_chain before the notices), in one
    statement, the last one signed for them all."""
    chain, values = Chain(), []
    for n, notice in enumerate(notices, 1):
        entry = await chain.next_entry(conn, notice["case_id"], "notice.emitted", ACTOR, at,
                                       {"due_at": notice["due_at"].isoformat()}, signed=n == len(notices))
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
