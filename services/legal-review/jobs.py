"""Background work: overdue-case metrics and unconfirmed emergencies (Art. 4(5), 48 h)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from warden.contract.envelope import now
from warden.contract.events import RequestProgress, StatusReason
from warden.runtime.jobs import every
from warden.runtime.service import ServiceContext

from legal_review import audit
from legal_review.cases import MACHINE
from legal_review.metrics import CASES_OVERDUE, CASES_PENDING, EMERGENCIES_UNCONFIRMED, OLDEST_PENDING_AGE
from legal_review.policy import Policy, current_policy

log = logging.getLogger(__name__)
CONFIRMATION_MISSING = "confirmation_missing"
SWEEP_INTERVAL_ENV = "WARDEN_LEGAL_SWEEP_INTERVAL_S"



@dataclass(frozen=True)
class SweepResult:
    overdue: dict[str, int]
    pending: dict[str, int]
    oldest_pending_s: dict[str, float]  # by priority; 0 when none waits
    unconfirmed: int
    newly_flagged: list[str]
    told: list[RequestProgress]  # what the authorities are to be told (emitted by the caller's unit of work)


MISSED_MESSAGE = "no confirming judicial order arrived within the confirmation window"


async def sweep(conn: asyncpg.Connection, at: datetime, policy: Policy | None = None) -> SweepResult:
    """Flag emergencies whose confirming order is late, and count what is overdue. In the caller's transaction;
    the statuses to tell the authorities are returned (`told`), for the caller's unit of work to emit.

    A missed confirmation takes away the emergency's one-reviewer approval (a pending case needs the full
    number of approvals) and is told to the authority: a status event with reason `confirmation_missing`.
    """
    policy = policy or current_policy()
    await audit.lock_chain(conn)
    flagged = await conn.fetch(
        """UPDATE cases SET flags = array_append(flags, $2), updated_at = $1,
                  approvals_required = CASE WHEN status = 'pending_review'
                                            THEN greatest(approvals_required, $3) ELSE approvals_required END
           WHERE confirmation_due < $1 AND confirmed_by IS NULL AND NOT ($2 = ANY(flags))
           RETURNING case_id, request_id, authority_id, status""",
        at, CONFIRMATION_MISSING, policy.review.approvals_required)
    for row in flagged:
        await audit.append(conn, str(row["case_id"]), "case.flagged", MACHINE, at,
                           {"flag": CONFIRMATION_MISSING, "reason": "no confirming judicial order within the window"})
    told = [RequestProgress(
        request_id=row["request_id"], authority_id=row["authority_id"], case_id=str(row["case_id"]),
        status=row["status"], reasons=[StatusReason(code=CONFIRMATION_MISSING, message=MISSED_MESSAGE)], at=at)
        for row in flagged if row["status"] != "rejected"]  # a rejected case has nothing left to confirm
    counts = await conn.fetch(
        """SELECT CASE WHEN emergency THEN 'emergency' ELSE 'standard' END AS priority,
                  count(*) AS pending, count(*) FILTER (WHERE deadline < $1) AS overdue,
                  extract(epoch FROM $1 - min(received_at))::float8 AS oldest_s
           FROM cases WHERE status = 'pending_review' GROUP BY 1""", at)
    unconfirmed = await conn.fetchval("SELECT count(*) FROM cases WHERE $1 = ANY(flags)", CONFIRMATION_MISSING)
    by_priority = {r["priority"]: r for r in counts}
    return SweepResult(
        overdue={p: by_priority[p]["overdue"] if p in by_priority else 0 for p in ("emergency", "standard")},
        pending={p: by_priority[p]["pending"] if p in by_priority else 0 for p in ("emergency", "standard")},
        oldest_pending_s={p: max(by_priority[p]["oldest_s"], 0.0) if p in by_priority else 0.0
                          for p in ("emergency", "standard")},
        unconfirmed=unconfirmed, newly_flagged=[str(r["case_id"]) for r in flagged], told=told)


async def watch_deadlines(runtime: ServiceContext) -> None:
    """Every WARDEN_LEGAL_SWEEP_INTERVAL_S seconds (default 30): sweep and publish the gauges."""
    interval = float(os.environ.get(SWEEP_INTERVAL_ENV, "30"))

    async def step() -> None:
        async with runtime.unit_of_work() as uow:  # the authority is told on commit, not at the next scan
            result = await sweep(uow.conn, now())
            for status in result.told:
                uow.emit(status)
                uow.emit(status.shared())
        for priority, count in result.overdue.items():
            CASES_OVERDUE.labels(priority).set(count)
        for priority, count in result.pending.items():
            CASES_PENDING.labels(priority).set(count)
        for priority, age in result.oldest_pending_s.items():
            OLDEST_PENDING_AGE.labels(priority).set(age)
        EMERGENCIES_UNCONFIRMED.set(result.unconfirmed)
        for case_id in result.newly_flagged:
            log.warning("emergency case lacks a confirming order", extra={"case_id": case_id})

    await every(runtime.stopping, interval, step, "deadline_sweep")
