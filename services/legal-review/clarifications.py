"""A reviewer's question to the authority, its signed answer, and the authority's withdrawal: the case's changes.

Every function runs in the caller's transaction, which holds the audit chain's lock and the case's row
(lock_chain, then load_case(for_update=True)); each returns the outbox rows to write in it. What may be
done is decided in review.py (pure) and checked against the signed documents in handlers.py.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from warden.contract.events import Clarification, LegalRequest, StatusReason
from warden.runtime.outbox import OutboxRow

from legal_review import audit
from legal_review.cases import Case, status_rows
from legal_review.review import resumed_deadline
from legal_review.rules import Assessment

WITHDRAWN_MESSAGE = "the authority withdrew the request"


async def ask(conn: asyncpg.Connection, case: Case, asked_by: str, question: str, at: datetime,
              chain: audit.Chain | None = None) -> tuple[Clarification, list[OutboxRow]]:
    """Put the question to the authority: the case waits (needs_clarification), its deadline clock paused."""
    clarification = Clarification(clarification_id=str(uuid.uuid4()), question=question, asked_at=at)
    await conn.execute(
        "INSERT INTO clarifications (clarification_id, case_id, asked_by, question, asked_at)"
        " VALUES ($1, $2, $3, $4, $5)", clarification.clarification_id, case.case_id, asked_by, question, at)
    await conn.execute("UPDATE cases SET status = 'needs_clarification', clock_paused_at = $2, updated_at = $2"
                       " WHERE case_id = $1", case.case_id, at)
    await audit.append(conn, case.case_id, "case.clarification_requested", asked_by, at, {
        "clarification_id": clarification.clarification_id, "question": question,
        "deadline_paused": case.deadline.isoformat()}, chain)
    case.status, case.clock_paused_at = "needs_clarification", at
    return clarification, status_rows(case, "needs_clarification", [StatusReason(
        code="clarification_requested", message=question)], at, clarification)


async def open_question(conn: asyncpg.Connection, case_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM clarifications WHERE case_id = $1 AND answered_at IS NULL", case_id)


async def questions_of(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM clarifications WHERE case_id = $1 ORDER BY asked_at", case_id)


async def record_answer(conn: asyncpg.Connection, case: Case, clarification_id: str, signed: dict,
                        request: LegalRequest, assessment: Assessment, at: datetime,
                        chain: audit.Chain | None = None) -> None:
    """Keep the authority's signed amendment and the case analysed anew: the clock runs again from `at` with
    the deadline moved by the time paused; the votes of the earlier round no longer count."""
    deadline = resumed_deadline(case.deadline, case.clock_paused_at, at)
    period = assessment.period
    await conn.execute("UPDATE clarifications SET answer = $2, answered_at = $3 WHERE clarification_id = $1",
                       clarification_id, signed["answer"], at)
    await conn.execute(
        """UPDATE cases SET request = $2::jsonb, assessment = $3::jsonb, amendments = amendments || $4::jsonb,
             flags = $5, granted_categories = $6, period_start = $7, period_end = $8, hold_until = $9,
             approvals_required = $10, supervisor_required = $11, policy_version = $12, deadline = $13,
             status = 'pending_review', clock_paused_at = NULL, review_round = review_round + 1, updated_at = $14
           WHERE case_id = $1""",
        case.case_id, request.model_dump_json(), assessment.model_dump_json(),
        json.dumps([signed]), assessment.flags, assessment.granted_categories,
        period.start if period else None, period.end if period else None, assessment.hold_until,
        max(assessment.approvals_required, 1), assessment.supervisor_required, assessment.policy_version,
        deadline, at)
    await audit.append(conn, case.case_id, "case.amended", f"authority/{case.authority_id}", at, {
        "clarification_id": clarification_id, "answer": signed["answer"],
        "data_categories": signed.get("data_categories"), "period": signed.get("period"),
        "signature": signed["signature"], "outcome": assessment.outcome, "flags": assessment.flags,
        "deadline": deadline.isoformat(), "policy_version": assessment.policy_version}, chain)
    case.request, case.results, case.flags = request, assessment.results, assessment.flags
    case.granted_categories, case.period, case.hold_until = assessment.granted_categories, period, assessment.hold_until
    case.approvals_required, case.supervisor_required = max(assessment.approvals_required, 1), assessment.supervisor_required
    case.deadline, case.status, case.clock_paused_at = deadline, "pending_review", None
    case.amendments, case.review_round = [*case.amendments, signed], case.review_round + 1
    case.policy_version = assessment.policy_version


async def withdraw(conn: asyncpg.Connection, case: Case, signed: dict, at: datetime,
                   chain: audit.Chain | None = None) -> list[OutboxRow]:
    """Close an open case as withdrawn (an open question is closed unanswered)."""
    await conn.execute("UPDATE cases SET status = 'withdrawn', clock_paused_at = NULL, decided_at = $2,"
                       " decided_by = $3, updated_at = $2 WHERE case_id = $1",
                       case.case_id, at, [f"authority/{case.authority_id}"])
    await audit.append(conn, case.case_id, "case.withdrawn", f"authority/{case.authority_id}", at, {
        "reason": signed.get("reason"), "withdrawn_at": signed.get("withdrawn_at"), "signature": signed["signature"],
        "status_before": case.status}, chain)
    case.status, case.decided_at = "withdrawn", at
    return status_rows(case, "withdrawn", [StatusReason(code="withdrawn", message=WITHDRAWN_MESSAGE)], at)


async def withdrawal_after_approval(conn: asyncpg.Connection, case: Case, signed: dict, at: datetime,
                                    chain: audit.Chain | None = None) -> bool:
    """An approved case withdrawn before its package: disclosure decides (it builds none if it has not yet);
    recorded once in the audit chain. False if it was recorded already (a replay)."""
    seen = await conn.fetchval("SELECT true FROM audit_log WHERE case_id = $1 AND action = 'case.withdrawal_received'",
                               case.case_id)
    if seen:
        return False
    await audit.append(conn, case.case_id, "case.withdrawal_received", f"authority/{case.authority_id}", at, {
        "reason": signed.get("reason"), "withdrawn_at": signed.get("withdrawn_at"),
        "signature": signed["signature"]}, chain)
    return True
