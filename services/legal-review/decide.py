"""A reviewer's decision on a case, or question to the authority, end to end: one unit of work each (its
events reach the relay on commit).

The review API and the reviewer console both call `decide_case` and `ask_clarification`; the rules of
who may decide what live in review.py (pure), the state changes in cases.py and clarifications.py.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from warden.authorities import find_authority
from warden.contract.events import PolicyRuleResult, RejectionReason
from warden.runtime.service import ServiceContext

from legal_review import assignments, audit, cases, clarifications, metrics
from legal_review.policy import current_policy
from legal_review.review import (
    DecisionRequest, Hold, Reviewer, ReviewRefused, Vote, VoteResult, judge_vote, may_act_on_held, may_ask,
)
from legal_review.rules import expired_at_decision, may_confirm_emergency, suspect_key

log = logging.getLogger(__name__)


class CaseNotFound(Exception):
    pass


@dataclass(frozen=True)
class Decided:
    case: cases.Case
    result: VoteResult

    @property
    def closed(self) -> bool:
        return self.result.final is not None

    @property
    def message(self) -> str:
        if self.result.final:
            return f"case {self.result.final}"
        return f"approval recorded; {self.case.approvals_required - len(self.result.approvers)} more needed"


async def confirm_named_emergency(conn: asyncpg.Connection, case: cases.Case, at: datetime) -> None:
    """A confirming order approved by reviewers confirms the emergency it names from then on."""
    if not case.request.confirms_request_id:
        return
    authority = await find_authority(conn, case.authority_id)
    if may_confirm_emergency("approved", authority, current_policy()):
        await cases.confirm_emergency(conn, case.country, case.request.confirms_request_id, case.case_id, at,
                                      suspect=suspect_key(case.request))


async def _locked_case(conn: asyncpg.Connection, case_id: str) -> cases.Case:
    """The case, its row locked for the rest of the transaction after the audit chain's lock (the order
    every writer takes them in); CaseNotFound when there is none."""
    await audit.lock_chain(conn)
    case = await cases.load_case(conn, case_id, for_update=True)
    if case is None:
        raise CaseNotFound(case_id)
    return case


async def decide_case(service: ServiceContext, case_id: str, reviewer: Reviewer, decision: DecisionRequest,
                      at: datetime) -> Decided:
    """Record the review in one unit of work; when it closes the case, its decision and status events with it.

    Raises CaseNotFound, or ReviewRefused (with the HTTP status to answer) when the decision is not allowed.
    """
    async with service.unit_of_work() as uow:
        conn = uow.conn
        case = await _locked_case(conn, case_id)
        prior = [Vote(r["reviewer"], r["role"], r["action"]) for r in await cases.reviews_of(conn, case.case_id)
                 if r["round"] == case.review_round]
        result = judge_vote(case, prior, reviewer, decision)
        may_act_on_held(await assignments.holder(conn, case.case_id, at), reviewer, at)
        await assignments.release(conn, case.case_id, reviewer.name)  # their part is done
        await cases.record_review(conn, case, reviewer.name, reviewer.role, decision.action, decision.reason,
                                  decision.data_categories, decision.period, at)
        if decision.action == "narrow":
            await cases.narrow_scope(conn, case, result.categories, result.period)
        rows, chain = [], audit.Chain()
        expired = expired_at_decision(case.request, at) if result.final == "approved" else None
        if expired is not None:  # approved by reviewers, but the order is no longer in force
            result = replace(result, final="rejected")
            rows = await cases.reject(conn, case, [RejectionReason(
                code=expired.code, rule=expired.rule, message=expired.message)], result.approvers, at, chain)
        elif result.final == "approved":
            rows = await cases.approve(conn, case, result.approvers, at, [PolicyRuleResult(
                rule="review.human", outcome="passed",
                message=f"approved by {len(result.approvers)} reviewer(s)")], chain)
            await confirm_named_emergency(conn, case, at)
        elif result.final == "rejected":
            rows = await cases.reject(conn, case, [RejectionReason(
                code="rejected_by_reviewer", rule="review.human", message=decision.reason)],
                [reviewer.name], at, chain)
        chain.checkpoint_at_commit(uow)  # when it decided the case
        uow.add(rows)
    if result.final:
        metrics.decided(result.final, "reviewers", (at - case.received_at).total_seconds())
    log.info("review recorded", extra={"case_id": case.case_id, "action": decision.action,
                                      "closed": result.final or "open"})
    return Decided(case, result)


async def ask_clarification(service: ServiceContext, case_id: str, reviewer: Reviewer, question: str,
                            at: datetime) -> cases.Case:
    """Ask the authority a question instead of deciding: the case waits for its signed answer
    (needs_clarification, deadline clock paused); the authority reads the question over its API.

    Raises CaseNotFound, or ReviewRefused when the case cannot take a question now.
    """
    async with service.unit_of_work() as uow:
        conn = uow.conn
        case = await _locked_case(conn, case_id)
        may_ask(case, reviewer)
        may_act_on_held(await assignments.holder(conn, case.case_id, at), reviewer, at)
        await assignments.release(conn, case.case_id, reviewer.name)
        _, rows = await clarifications.ask(conn, case, reviewer.name, question, at)
        uow.add(rows)
    log.info("clarification requested", extra={"case_id": case.case_id})
    return case


async def claim_case(service: ServiceContext, case_id: str, reviewer: Reviewer, at: datetime,
                     minutes: float) -> Hold:
    """Take an open case for `minutes` (or extend one's own hold). Returns the hold as it stands: someone
    else's when they hold it. Raises CaseNotFound, or ReviewRefused when the case is closed."""
    async with service.unit_of_work() as uow:
        case = await cases.load_case(uow.conn, case_id, for_update=True)
        if case is None:
            raise CaseNotFound(case_id)
        if case.closed:
            raise ReviewRefused(409, "case_closed", f"the case is already {case.status}")
        hold = await assignments.claim(uow.conn, case.case_id, reviewer.name, at, minutes)
    log.info("case claimed", extra={"case_id": case_id, "held": hold.reviewer == reviewer.name})
    return hold


async def release_case(service: ServiceContext, case_id: str, reviewer: Reviewer) -> bool:
    """Give up one's own hold on a case; False when the reviewer held none."""
    async with service.unit_of_work() as uow:
        released = await assignments.release(uow.conn, case_id, reviewer.name)
    return released


async def add_note(service: ServiceContext, case_id: str, reviewer: Reviewer, note: str, at: datetime) -> str:
    """An internal note on a case, open or closed (never shown to the authority). Raises CaseNotFound."""
    async with service.unit_of_work() as uow:
        case = await _locked_case(uow.conn, case_id)
        note_id = await assignments.add_note(uow.conn, case.case_id, reviewer.name, note, at)
    log.info("case note added", extra={"case_id": case_id})
    return note_id
