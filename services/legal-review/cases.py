"""Cases in the `legal_review` schema: open, decide, and the events each transition emits.

Every function here runs inside the caller's transaction (the consumer's batch or an
API request) and returns the outbox rows to write in it; every state change is also
appended to the audit chain in that same transaction. The caller publishes the chain's
head when its transaction decided a case (`Chain.checkpoint_at_commit`).
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

import asyncpg

from warden.contract.events import (
    AuthorityRegistered, Clarification, LegalRequest, Period, PolicyRuleResult, RejectionReason, RequestApproved,
    RequestReceived, RequestRejected, StatusReason, status_events,
)
from warden.runtime.outbox import OutboxRow, event_row

from legal_review import audit, keys
from legal_review.policy import current_policy
from legal_review.rules import Assessment, EarlierHold, RuleResult, SuspectHold, suspect_key, user_notice

SERVICE = "legal-review"
MACHINE = "policy"
OPEN_STATUSES = ("pending_review", "needs_clarification")


@dataclass
class Case:
    case_id: str
    request_id: str
    authority_id: str
    country: str | None
    received_at: datetime
    deadline: datetime
    emergency: bool
    kind: str
    status: str
    flags: list[str]
    request: LegalRequest
    results: list[RuleResult]
    granted_categories: list[str]
    period: Period | None
    hold_until: datetime | None
    extensions: int
    approvals_required: int
    supervisor_required: bool
    confirmation_due: datetime | None
    confirmed_by: str | None
    policy_version: str
    decided_at: datetime | None
    decided_by: list[str]
    suspect_account_id: str | None
    # The request exactly as the authority signed it, and the registered key that verified it.
    submitted: dict | None = None
    authority_key: str | None = None
    # A reviewer's question open since then (status needs_clarification; the deadline clock is paused).
    clock_paused_at: datetime | None = None
    # The authority's signed amendments, as signed, in order; votes count only in the current round.
    amendments: list[dict] = field(default_factory=list)
    review_round: int = 0

    @property
    def closed(self) -> bool:
        return self.status not in OPEN_STATUSES


def case_from_row(row: asyncpg.Record) -> Case:
    assessment = json.loads(row["assessment"])
    period = (Period(start=row["period_start"], end=row["period_end"])
              if row["period_start"] and row["period_end"] else None)
    return Case(
        case_id=str(row["case_id"]), request_id=row["request_id"], authority_id=row["authority_id"],
        country=row["country"], received_at=row["received_at"], deadline=row["deadline"],
        emergency=row["emergency"], kind=row["kind"], status=row["status"], flags=list(row["flags"]),
        request=LegalRequest.model_validate(json.loads(row["request"])),
        results=[RuleResult.model_validate(r) for r in assessment["results"]],
        granted_categories=list(row["granted_categories"]), period=period, hold_until=row["hold_until"],
        extensions=row["extensions"], approvals_required=row["approvals_required"],
        supervisor_required=row["supervisor_required"], confirmation_due=row["confirmation_due"],
        confirmed_by=str(row["confirmed_by"]) if row["confirmed_by"] else None,
        policy_version=row["policy_version"], decided_at=row["decided_at"], decided_by=list(row["decided_by"]),
        suspect_account_id=row["suspect_account_id"],
        submitted=json.loads(row["submitted"]) if row["submitted"] else None, authority_key=row["authority_key"],
        clock_paused_at=row["clock_paused_at"], amendments=json.loads(row["amendments"]),
        review_round=row["review_round"])


async def load_case(conn: asyncpg.Connection, case_id: str, *, for_update: bool = False) -> Case | None:
    row = await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1" + (" FOR UPDATE" if for_update else ""),
                              case_id)
    return case_from_row(row) if row else None


async def find_cases(conn: asyncpg.Connection, at: datetime, *, status: str | None = "pending_review",
                     overdue: bool | None = None, due_before: datetime | None = None, limit: int = 100) -> list[Case]:
    """Cases by status, emergencies first, then by deadline (the review queue's order)."""
    conditions, args = [], []
    if status:
        args.append(status)
        conditions.append(f"status = ${len(args)}")
    if overdue is not None:
        args.append(at)
        conditions.append(f"deadline {'<' if overdue else '>='} ${len(args)}")
    if due_before is not None:
        args.append(due_before)
        conditions.append(f"deadline < ${len(args)}")
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    args.append(limit)
    rows = await conn.fetch(f"SELECT * FROM cases{where} ORDER BY emergency DESC, deadline LIMIT ${len(args)}", *args)
    return [case_from_row(r) for r in rows]


# Links followed back along a chain of extensions (each names the one it extends); far more than
# any policy allows, and a bound on a loop of forged names.
MAX_CHAIN = 16


async def _chain_start(conn: asyncpg.Connection, authority_id: str, row: asyncpg.Record) -> tuple[datetime, int]:
    """When the first hold of `row`'s chain of extensions was received, and how many links lie before `row`."""
    started_at, depth, seen = row["received_at"], 0, {row["request_id"]}
    extends = row["extends"]
    while extends and extends not in seen and depth < MAX_CHAIN:
        earlier = await conn.fetchrow(
            "SELECT request_id, received_at, request->>'extends_request_id' AS extends FROM cases"
            " WHERE authority_id = $1 AND request_id = $2", authority_id, extends)
        if earlier is None:
            break
        seen.add(extends)
        started_at, depth, extends = earlier["received_at"], depth + 1, earlier["extends"]
    return started_at, depth


async def find_earlier_hold(conn: asyncpg.Connection, authority_id: str, request_id: str) -> EarlierHold | None:
    row = await conn.fetchrow(
        "SELECT case_id, request_id, kind, status, hold_until, extensions, received_at, suspect_key,"
        " request->>'extends_request_id' AS extends FROM cases WHERE authority_id = $1 AND request_id = $2",
        authority_id, request_id)
    if row is None:
        return None
    started_at, depth = await _chain_start(conn, authority_id, row)
    return EarlierHold(case_id=str(row["case_id"]), kind=row["kind"], status=row["status"],
                       hold_until=row["hold_until"], extensions=row["extensions"], chain_started_at=started_at,
                       chain_extensions=depth + row["extensions"], suspect_key=row["suspect_key"])


async def holds_on_suspect(conn: asyncpg.Connection, request: LegalRequest, at: datetime) -> tuple[SuspectHold, ...]:
    """Approved holds on the request's suspect (by every authority) still running at `at`."""
    rows = await conn.fetch(
        "SELECT authority_id, request_id, received_at, hold_until, request->>'extends_request_id' AS extends"
        " FROM cases WHERE suspect_key = $1 AND kind = 'preservation' AND status = 'approved'"
        " AND hold_until > $2 ORDER BY received_at LIMIT 64", suspect_key(request), at)
    holds = []
    for row in rows:
        started_at, _ = await _chain_start(conn, row["authority_id"], row)
        holds.append(SuspectHold(authority_id=row["authority_id"], started_at=started_at,
                                 hold_until=row["hold_until"]))
    return tuple(holds)


def _utc(at: datetime | None) -> datetime | None:
    """As a timestamptz column gives it back."""
    return at.astimezone(timezone.utc) if at is not None else None


def new_case(received: RequestReceived, assessment: Assessment, authority: AuthorityRegistered | None,
             authority_key: str | None = None) -> Case:
    """The case exactly as open_case stores it (what case_from_row would read back)."""
    request, period = received.request, assessment.period
    return Case(
        case_id=received.case_id, request_id=request.request_id, authority_id=request.authority_id,
        country=authority.country if authority else None, received_at=_utc(received.received_at),
        deadline=_utc(assessment.deadline), emergency=assessment.emergency, kind=assessment.kind,
        status="pending_review", flags=list(assessment.flags), request=request, results=list(assessment.results),
        granted_categories=list(assessment.granted_categories),
        period=Period(start=_utc(period.start), end=_utc(period.end)) if period else None,
        hold_until=_utc(assessment.hold_until), extensions=0, approvals_required=assessment.approvals_required,
        supervisor_required=assessment.supervisor_required, confirmation_due=_utc(assessment.confirmation_due),
        confirmed_by=None, policy_version=assessment.policy_version, decided_at=None, decided_by=[],
        suspect_account_id=request.suspect.account_id, submitted=received.submitted, authority_key=authority_key)


_INSERT_CASE = """INSERT INTO cases (case_id, request_id, authority_id, country, received_at, deadline, emergency,
               kind, status, flags, request, assessment, suspect_key, suspect_account_id, granted_categories,
               period_start, period_end, hold_until, approvals_required, supervisor_required, confirmation_due,
               policy_version, decided_by, decided_at, updated_at, submitted, authority_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13, $14, $15, $16, $17, $18,
                     $19, $20, $21, $22, $23, $24, coalesce($24, now()), $25::jsonb, $26)
             ON CONFLICT DO NOTHING RETURNING case_id"""


def _case_values(received: RequestReceived, assessment: Assessment, authority: AuthorityRegistered | None,
                 authority_key: str | None, status: str, decided_by: list[str], decided_at: datetime | None) -> tuple:
    """$1..$26 of _INSERT_CASE."""
    request, period = received.request, assessment.period
    return (received.case_id, request.request_id, request.authority_id, authority.country if authority else None,
            received.received_at, assessment.deadline, assessment.emergency, assessment.kind, status,
            assessment.flags, request.model_dump_json(), assessment.model_dump_json(), suspect_key(request),
            request.suspect.account_id, assessment.granted_categories,
            period.start if period else None, period.end if period else None, assessment.hold_until,
            assessment.approvals_required, assessment.supervisor_required, assessment.confirmation_due,
            assessment.policy_version, decided_by, decided_at,
            json.dumps(received.submitted) if received.submitted is not None else None, authority_key)


async def _opened_entry(conn: asyncpg.Connection, received: RequestReceived, assessment: Assessment,
                        chain: audit.Chain, signed: bool = True) -> audit.AuditEntry:
    request = received.request
    return await chain.next_entry(conn, received.case_id, "case.opened", MACHINE, received.received_at, {
        "request_id": request.request_id, "authority_id": request.authority_id,
        "policy_version": assessment.policy_version, "assessment": assessment.outcome, "flags": assessment.flags,
        "rules": {r.rule: f"{r.outcome}:{r.code}" for r in assessment.results},
    }, signed=signed)


# (statement, *args) -> True if the statement wrote its row (returned one).
SendStatement = Callable[..., Awaitable[bool]]


async def _send_now(conn: asyncpg.Connection, statement: str, *args: Any) -> bool:
    return await conn.fetchrow(statement, *args) is not None


class CaseAlreadyKnown(Exception):
    """A case statement sent with its batch found its case already there (a redelivered request)."""


class CaseStatements:
    """The case statements of a batch handler's call, sent together (one round trip per run of the same
    statement, Connection.fetchmany) by `send_all`, which raises CaseAlreadyKnown if any wrote nothing:
    the entries chained after it would then point at an entry never written, so the call must fail
    (the runtime replays it one event per call, where each statement goes at once and a known case is
    told). `send` takes a statement and answers True: use it only where that is checked this way."""

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[tuple[Any, ...]]]] = []

    async def send(self, statement: str, *args: Any) -> bool:
        # Only neighbours are merged, so statements still go out in the order they were made.
        if self._runs and self._runs[-1][0] == statement:
            self._runs[-1][1].append(args)
        else:
            self._runs.append((statement, [args]))
        return True

    async def send_all(self, conn: asyncpg.Connection) -> None:
        runs, self._runs = self._runs, []
        for statement, arg_sets in runs:
            written = await conn.fetchmany(statement, arg_sets)
            if len(written) != len(arg_sets):
                raise CaseAlreadyKnown(f"{len(arg_sets) - len(written)} of {len(arg_sets)} cases already known")


async def open_case(conn: asyncpg.Connection, received: RequestReceived, assessment: Assessment,
                    authority: AuthorityRegistered | None, chain: audit.Chain | None = None,
                    authority_key: str | None = None, send: SendStatement | None = None) -> Case | None:
    """Record the case as the machine assessed it, and its audit entry, in one statement; None when the
    case is already known (then no entry either). `send`: how the statement goes out (CaseStatements:
    with the batch's others); at once by default."""
    chain = chain or audit.Chain()
    entry = await _opened_entry(conn, received, assessment, chain)
    if not await (send or partial(_send_now, conn))(
            f"""WITH opened AS ({_INSERT_CASE})
               INSERT INTO audit_log ({audit.COLUMNS})
               SELECT {audit.placeholders(27)} FROM opened RETURNING seq""",
            *_case_values(received, assessment, authority, authority_key, "pending_review", [], None),
            *audit.entry_values(entry)):
        return None
    chain.appended(entry)
    return new_case(received, assessment, authority, authority_key)


async def open_decided(conn: asyncpg.Connection, received: RequestReceived, assessment: Assessment,
                       authority: AuthorityRegistered | None, chain: audit.Chain | None = None,
                       authority_key: str | None = None, send: SendStatement | None = None
                       ) -> tuple[Case | None, list[OutboxRow]]:
    """A case the machine decides at once (approved or rejected): open_case then approve/reject, in one
    statement (the case, its opened entry, the decision, its decided entry). (None, []) when the case is
    already known. `send` as for open_case (never for an extension: it changes the earlier hold)."""
    assert assessment.outcome in ("approved", "rejected"), assessment.outcome
    chain = chain or audit.Chain()
    case = new_case(received, assessment, authority, authority_key)
    at, outcome, decided_by = received.received_at, assessment.outcome, [machine_actor(case)]
    if outcome == "approved":
        decision, rows = _approval(case, decided_by, at)
    else:
        decision, rows = _rejection(case, [RejectionReason(code=r.code, rule=r.rule, message=r.message)
                                        for r in assessment.failed], decided_by, at)
    opened = await _opened_entry(conn, received, assessment, chain, signed=False)  # the decided entry signs both
    decided = await _decided_entry(conn, case, outcome, decided_by, at, chain, after=opened)
    if not await (send or partial(_send_now, conn))(
            f"""WITH opened AS ({_INSERT_CASE}),
               opened_entry AS (
                 INSERT INTO audit_log ({audit.COLUMNS})
                 SELECT {audit.placeholders(27)} FROM opened),
               decision AS (
                 INSERT INTO decisions (case_id, outcome, decided_by, event, decided_at)
                 SELECT case_id, $9, $23, $37::jsonb, $24 FROM opened)
               INSERT INTO audit_log ({audit.COLUMNS})
               SELECT {audit.placeholders(38)} FROM opened RETURNING seq""",
            *_case_values(received, assessment, authority, authority_key, outcome, decided_by, at),
            *audit.entry_values(opened), decision.json(), *audit.entry_values(decided)):
        return None, []
    chain.appended(decided)
    case.status, case.decided_by, case.decided_at = outcome, decided_by, _utc(at)
    if outcome == "approved" and case.kind == "preservation" and case.request.extends_request_id:
        await _extend_earlier_hold(conn, case, at, chain)
    return case, rows


def machine_actor(case: Case) -> str:
    return f"{MACHINE}/{case.policy_version}"


def _approval(case: Case, decided_by: list[str], at: datetime, extra_rules: list[PolicyRuleResult] = ()
              ) -> tuple[keys.SignedDecision[RequestApproved], list[OutboxRow]]:
    """The approval of `case` as it stands, signed, and the rows to emit for it."""
    assert case.period is not None, "an approvable case has a granted period"
    rules = [PolicyRuleResult(rule=r.rule, outcome=r.outcome, message=r.message) for r in case.results]
    event = RequestApproved(
        case_id=case.case_id, request_id=case.request_id, authority_id=case.authority_id,
        suspect=case.request.suspect, kind=case.kind, data_categories=case.granted_categories,
        period=case.period, hold_until=case.hold_until, nondisclosure_until=case.request.nondisclosure_until,
        policy_rules=[*rules, *extra_rules], decided_by=decided_by, signed_request=case.submitted,
        authority_key=case.authority_key, decided_at=at,
        user_notice=user_notice(case.country, case.emergency, case.received_at, current_policy()),
        signed_amendments=case.amendments or None)
    signed = keys.signed(event)
    refused = [c for c in case.request.data_categories if c not in case.granted_categories]
    reasons = [StatusReason(code="category_refused", message=f"{c[:64]} is not granted") for c in refused]
    if case.request.period != case.period:
        reasons.append(StatusReason(code="period_narrowed", message=f"granted {case.period.start.isoformat()} .. "
                                                                     f"{case.period.end.isoformat()}"))
    return signed, [signed.row(SERVICE), *status_rows(case, "approved", reasons, at)]


def _rejection(case: Case, reasons: list[RejectionReason], decided_by: list[str], at: datetime
               ) -> tuple[keys.SignedDecision[RequestRejected], list[OutboxRow]]:
    signed = keys.signed(RequestRejected(
        case_id=case.case_id, request_id=case.request_id, authority_id=case.authority_id, reasons=reasons,
        decided_by=decided_by, decided_at=at))
    status_reasons = [StatusReason(code=r.code, message=r.message) for r in reasons]
    return signed, [signed.row(SERVICE), *status_rows(case, "rejected", status_reasons, at)]


async def approve(conn: asyncpg.Connection, case: Case, decided_by: list[str], at: datetime,
                  extra_rules: list[PolicyRuleResult] = (), chain: audit.Chain | None = None) -> list[OutboxRow]:
    """Close the case as approved with its current scope; emit the decision and the status."""
    decision, rows = _approval(case, decided_by, at, extra_rules)
    chain = chain or audit.Chain()
    await _decide(conn, case, "approved", decided_by, decision.json(), at, chain)
    if case.kind == "preservation" and case.request.extends_request_id:
        await _extend_earlier_hold(conn, case, at, chain)
    return rows


async def reject(conn: asyncpg.Connection, case: Case, reasons: list[RejectionReason], decided_by: list[str],
                 at: datetime, chain: audit.Chain | None = None) -> list[OutboxRow]:
    decision, rows = _rejection(case, reasons, decided_by, at)
    chain = chain or audit.Chain()
    await _decide(conn, case, "rejected", decided_by, decision.json(), at, chain)
    return rows


def status_rows(case: Case, status: str, reasons: list[StatusReason], at: datetime,
                clarification: Clarification | None = None) -> list[OutboxRow]:
    """The status told to the authority: in full for the authority API, and on the shared status topic."""
    return [event_row(SERVICE, event) for event in status_events(
        request_id=case.request_id, authority_id=case.authority_id, case_id=case.case_id, status=status,
        reasons=reasons, at=at, deadline=case.deadline if status == "pending_review" else None,
        clarification=clarification)]


async def _decided_entry(conn: asyncpg.Connection, case: Case, outcome: str, decided_by: list[str], at: datetime,
                         chain: audit.Chain, after: audit.AuditEntry | None = None) -> audit.AuditEntry:
    return await chain.next_entry(conn, case.case_id, "case.decided", ",".join(decided_by), at, {
        "outcome": outcome, "data_categories": case.granted_categories if outcome == "approved" else [],
        "period": case.period.model_dump(mode="json") if case.period and outcome == "approved" else None,
        "hold_until": case.hold_until.isoformat() if case.hold_until and outcome == "approved" else None,
    }, after=after)


async def _decide(conn: asyncpg.Connection, case: Case, outcome: str, decided_by: list[str], event_json: str,
                  at: datetime, chain: audit.Chain) -> None:
    """Close the case, record the decision and its audit entry: one statement."""
    entry = await _decided_entry(conn, case, outcome, decided_by, at, chain)
    seq = await conn.fetchval(
        f"""WITH closed AS (
             UPDATE cases SET status = $2, decided_by = $3, decided_at = $4, updated_at = $4 WHERE case_id = $1
             RETURNING case_id),
           decided AS (
             INSERT INTO decisions (case_id, outcome, decided_by, event, decided_at)
             SELECT case_id, $2, $3, $5::jsonb, $4 FROM closed)
           INSERT INTO audit_log ({audit.COLUMNS})
           SELECT {audit.placeholders(6)} FROM closed RETURNING seq""",
        case.case_id, outcome, decided_by, at, event_json, *audit.entry_values(entry))
    if seq is None:
        raise LookupError(f"case {case.case_id} does not exist")
    chain.appended(entry)
    case.status, case.decided_by, case.decided_at = outcome, decided_by, at


async def _extend_earlier_hold(conn: asyncpg.Connection, case: Case, at: datetime,
                               chain: audit.Chain | None = None) -> None:
    earlier = await conn.fetchrow(
        "UPDATE cases SET extensions = extensions + 1, updated_at = $3"
        " WHERE authority_id = $1 AND request_id = $2 RETURNING case_id, extensions",
        case.authority_id, case.request.extends_request_id, at)
    if earlier is not None:
        await audit.append(conn, str(earlier["case_id"]), "hold.extended", machine_actor(case), at, {
            "by_case": case.case_id, "extensions": earlier["extensions"],
            "hold_until": case.hold_until.isoformat() if case.hold_until else None}, chain)


async def confirm_emergency(conn: asyncpg.Connection, country: str | None, emergency_request_id: str,
                            confirming_case_id: str, at: datetime, chain: audit.Chain | None = None,
                            suspect: str | None = None) -> list[str]:
    """Mark the emergency case a judicial order names as confirmed: the one emergency awaiting confirmation
    with that request id, from an authority of the same country, about the same person (`suspect`: the
    confirming request's suspect_key). Several such cases confirm none: the order does not say which."""
    if country is None or suspect is None:
        return []
    rows = await conn.fetch(
        """WITH named AS (
             SELECT case_id FROM cases
             WHERE request_id = $1 AND country = $2 AND suspect_key = $5 AND emergency
               AND confirmation_due IS NOT NULL AND confirmed_by IS NULL)
           UPDATE cases SET confirmed_by = $3, flags = array_remove(flags, 'confirmation_missing'), updated_at = $4
           WHERE case_id IN (SELECT case_id FROM named) AND (SELECT count(*) FROM named) = 1
           RETURNING case_id""",
        emergency_request_id, country, confirming_case_id, at, suspect)
    for row in rows:
        await audit.append(conn, str(row["case_id"]), "case.confirmed", MACHINE, at,
                           {"confirming_case": confirming_case_id}, chain)
    return [str(r["case_id"]) for r in rows]


async def record_review(conn: asyncpg.Connection, case: Case, reviewer: str, role: str, action: str, reason: str,
                        data_categories: list[str] | None, period: Period | None, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO reviews (case_id, reviewer, role, action, reason, data_categories, period_start, period_end, at,
                                round)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        case.case_id, reviewer, role, action, reason, data_categories,
        period.start if period else None, period.end if period else None, at, case.review_round)
    await audit.append(conn, case.case_id, "case.reviewed", reviewer, at, {
        "role": role, "action": action, "reason": reason, "data_categories": data_categories,
        "period": period.model_dump(mode="json") if period else None})


async def narrow_scope(conn: asyncpg.Connection, case: Case, categories: list[str], period: Period) -> None:
    await conn.execute(
        "UPDATE cases SET granted_categories = $2, period_start = $3, period_end = $4, updated_at = now()"
        " WHERE case_id = $1", case.case_id, categories, period.start, period.end)
    case.granted_categories, case.period = categories, period


async def reviews_of(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM reviews WHERE case_id = $1 ORDER BY id", case_id)


async def violations_of(conn: asyncpg.Connection, account_id: str | None) -> list[asyncpg.Record]:
    if not account_id:
        return []
    return await conn.fetch(
        "SELECT content_id, category, decided_at FROM violations WHERE account_id = $1 ORDER BY decided_at DESC",
        account_id)
