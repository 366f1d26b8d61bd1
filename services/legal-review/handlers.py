"""Legal review's handlers: assess each received request, its amendments and withdrawal; keep confirmed violations."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from pydantic import ValidationError

from warden.authorities import AuthorityState, authority_of, usable_keys
from warden.contract.envelope import Envelope, EventRejected, UnknownYet, now
from warden.contract.events import (
    DisclosureIssued, LegalRequest, RejectionReason, RequestAmended, RequestReceived, RequestStatus, RequestWithdrawn,
    StatusReason, ViolationConfirmed, ViolationWithdrawn,
)
from warden.identifiers import case_id_for, normalise_suspect
from warden.provenance import amended_request, request_key, signed_by
from warden.runtime.batch import describe_validation_error
from warden.runtime.service import BatchItem, Context

from legal_review import audit, cases, clarifications, metrics
from legal_review.policy import Policy, current_policy
from legal_review.rules import (
    Facts, assess, is_preservation, may_confirm_emergency, provenance_mismatch, retention_window, suspect_key,
)

log = logging.getLogger(__name__)


@dataclass
class ReviewState(AuthorityState):
    """What legal review's handlers learn once per transaction: the policy (a changed policy file applies
    from the next batch) and the audit chain's tail (known once the transaction holds the chain's lock)."""

    policy: Policy | None = None
    chain: audit.Chain = field(default_factory=audit.Chain)


async def verified_request(ctx: Context, received: RequestReceived) -> str:
    """The registered key under which the authority's signature over the request as submitted verifies,
    once the event is shown to be that request: EventRejected otherwise. Intake checked it already; a
    writer of `legal.requests.received` is not thereby believed."""
    if received.submitted is None:
        raise EventRejected("unsigned_request", "received event carries no request as submitted")
    try:
        submitted = LegalRequest.model_validate(received.submitted)
    except ValidationError as exc:
        raise EventRejected("invalid_data", f"submitted: {describe_validation_error(exc)}") from None
    problem = provenance_mismatch(received, submitted)
    if problem:
        raise EventRejected("request_mismatch", problem)
    key = request_key(received.submitted, await usable_keys(ctx, submitted.authority_id))
    if key is None:
        raise UnknownYet("bad_signature", f"the request's signature does not verify with a registered key of "
                                          f"{submitted.authority_id!r}")
    return key


async def review_requests(ctx: Context, items: list[BatchItem[RequestReceived]]) -> None:
    """Batch handler: run the policy over each received request (approve, reject, or queue it for humans).

    A request whose provenance fails is rejected alone. The batch's new cases, with their audit
    entries, go out together at the end (CaseStatements); a request that extends a hold, confirms an
    emergency or needs the holds on its suspect reads earlier cases, so what is pending goes out first
    and its own case at once. A call with one request sends everything at once and is told whether
    its case was new (the runtime's replay, one event per call, included)."""
    statements = cases.CaseStatements() if len(items) > 1 else None
    for item in items:
        with item.traced():
            try:
                authority_key = await verified_request(ctx, item.event)
            except EventRejected as rejected:
                item.reject(rejected)
                continue
            await review(ctx, item, authority_key, statements)
    if statements is not None:
        await statements.send_all(ctx.conn)


async def review(ctx: Context, item: BatchItem[RequestReceived], authority_key: str,
                 statements: cases.CaseStatements | None) -> None:
    received = item.event
    state: ReviewState = ctx.state
    if state.policy is None:  # once per batch: a changed policy file applies from the next one
        state.policy = current_policy()
    policy, chain = state.policy, state.chain  # the chain's tail, known once this batch holds its lock
    request = received.request
    authority = await authority_of(ctx, request.authority_id)
    # Holds on the suspect bound a new hold and reach data past retention: read them when either matters.
    needs_holds = is_preservation(request) or request.period.start < retention_window(received.received_at,
                                                                                      policy)[0]
    send = None
    if request.extends_request_id or request.confirms_request_id or needs_holds:
        if statements is not None:  # it reads earlier cases, maybe of this batch: those go out first
            await statements.send_all(ctx.conn)
    elif statements is not None:
        send = statements.send
    earlier = None
    if request.extends_request_id:
        earlier = await cases.find_earlier_hold(ctx.conn, request.authority_id, request.extends_request_id)
    holds = await cases.holds_on_suspect(ctx.conn, request, received.received_at) if needs_holds else ()
    assessment = assess(Facts(request, received.received_at, authority, earlier, holds), policy)
    at = received.received_at
    if assessment.outcome == "pending_review":
        case = await cases.open_case(ctx.conn, received, assessment, authority, chain, authority_key, send)
        reasons = [StatusReason(code=r.code, message=r.message) for r in assessment.flagged]
        rows = cases.status_rows(case, "pending_review", reasons, at) if case else []
    else:  # approved or rejected by the machine: opened and decided in one statement
        case, rows = await cases.open_decided(ctx.conn, received, assessment, authority, chain,
                                              authority_key, send)
    if case is None:
        log.info("case already known, ignored", extra={"case_id": received.case_id})
        return
    item.outgoing.extend(rows)
    if assessment.outcome != "pending_review":
        ctx.on_commit(lambda: metrics.decided(assessment.outcome, "policy",
                                              (now() - received.received_at).total_seconds()))
    if case.closed:
        chain.checkpoint_at_commit(ctx)
    if request.confirms_request_id and may_confirm_emergency(assessment, authority, policy):
        await cases.confirm_emergency(ctx.conn, case.country, request.confirms_request_id, case.case_id, at, chain,
                                      suspect_key(request))
    log.info("request assessed", extra={"case_id": case.case_id, "outcome": assessment.outcome,
                                        "flags": assessment.flags, "policy_version": policy.version})


async def authority_case(ctx: Context, authority_id: str, request_id: str) -> cases.Case:
    """The case of an authority's signed amendment or withdrawal (the event's data), locked for the change,
    once the document is shown to be the authority's: signed by the key its request was verified with (the
    key pinned to the case), still registered and not revoked. EventRejected otherwise."""
    await audit.lock_chain(ctx.conn)  # the chain before the case's row, as every writer takes them
    case = await cases.load_case(ctx.conn, case_id_for(authority_id, request_id), for_update=True)
    if case is None or case.authority_key is None:
        raise EventRejected("unknown_case", "no case of this authority has this request id")
    assert ctx.envelope is not None
    if not signed_by(ctx.envelope.data, case.authority_key):
        raise EventRejected("bad_signature", "not signed by the key the authority's request was verified with")
    if case.authority_key not in await usable_keys(ctx, authority_id):
        raise EventRejected("revoked_authority", f"the key of {authority_id!r} pinned to the case is revoked")
    return case


async def answer_clarification(ctx: Context, amended: RequestAmended) -> None:
    """The authority's signed answer to the open question: kept, and the amended request analysed anew under
    the policy. A failed rule rejects it; otherwise it goes back to the reviewers (who asked), clock running."""
    case = await authority_case(ctx, amended.authority_id, amended.request_id)
    question = await clarifications.open_question(ctx.conn, case.case_id)
    if case.status != "needs_clarification" or question is None:
        raise EventRejected("no_open_clarification", f"the case is {case.status}: no question waits for an answer")
    if str(question["clarification_id"]) != amended.clarification_id:
        raise EventRejected("not_the_open_clarification", "the amendment answers another question than the open one")
    signed = ctx.envelope.data
    try:
        request = LegalRequest.model_validate(amended_request(case.submitted or {}, [*case.amendments, signed],
                                                              case.authority_key))
    except ValidationError as exc:
        raise EventRejected("invalid_data", f"amended request: {describe_validation_error(exc)}") from None
    request = request.model_copy(update={"suspect": normalise_suspect(request.suspect)})
    policy = current_policy()
    authority = await authority_of(ctx, case.authority_id)
    earlier = (await cases.find_earlier_hold(ctx.conn, case.authority_id, request.extends_request_id)
               if request.extends_request_id else None)
    holds = await cases.holds_on_suspect(ctx.conn, request, case.received_at)
    assessment = assess(Facts(request, case.received_at, authority, earlier, holds), policy)
    chain, at = ctx.state.chain, now()
    await clarifications.record_answer(ctx.conn, case, amended.clarification_id, signed, request, assessment, at,
                                       chain)
    if assessment.outcome == "rejected":
        ctx.outgoing.extend(await cases.reject(ctx.conn, case, [
            RejectionReason(code=r.code, rule=r.rule, message=r.message) for r in assessment.failed],
            [cases.machine_actor(case)], at, chain))
        chain.checkpoint_at_commit(ctx)
    else:
        reasons = [StatusReason(code="clarification_answered", message="the answer is back with the reviewers"),
                   *(StatusReason(code=r.code, message=r.message) for r in assessment.flagged)]
        ctx.outgoing.extend(cases.status_rows(case, "pending_review", reasons, at))
    log.info("clarification answered", extra={"case_id": case.case_id, "outcome": assessment.outcome})


async def withdraw_request(ctx: Context, withdrawn: RequestWithdrawn) -> None:
    """The authority's signed withdrawal: an open case closes as withdrawn; an approved one is left to
    disclosure, which builds no package for it unless it already has."""
    case = await authority_case(ctx, withdrawn.authority_id, withdrawn.request_id)
    chain, at = ctx.state.chain, now()
    if not case.closed:
        ctx.outgoing.extend(await clarifications.withdraw(ctx.conn, case, ctx.envelope.data, at, chain))
        chain.checkpoint_at_commit(ctx)  # the case is closed, as a decision closes one
    elif case.status != "approved" or not await clarifications.withdrawal_after_approval(
            ctx.conn, case, ctx.envelope.data, at, chain):
        raise EventRejected("case_closed", f"the case is already {case.status}: nothing left to withdraw")
    log.info("request withdrawn", extra={"case_id": case.case_id, "status": case.status})


async def record_violation(ctx: Context, violation: ViolationConfirmed | ViolationWithdrawn) -> None:
    """Reviewers see a suspect's confirmed violations when they read a case; one overturned on appeal or review
    (withdrawn) leaves the case view. A withdrawal takes back only what was confirmed before it."""
    if isinstance(violation, ViolationWithdrawn):
        await ctx.conn.execute(
            "DELETE FROM violations WHERE account_id = $1 AND content_id = $2 AND decided_at <= $3",
            violation.account_id, violation.content_id, violation.withdrawn_at)
        return
    await ctx.conn.execute(
        "INSERT INTO violations (account_id, content_id, category, decided_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING",
        violation.account_id, violation.content_id, violation.category, violation.decided_at)


# What the disclosure service reports of approved disclosures, for the transparency report.
FULFILMENT_STATUSES = {"no_data", "cancelled"}


def _case_uuid(case_id: str | None) -> uuid.UUID | None:
    """Case ids are UUIDs (warden.identifiers.case_id_for); anything else names none of our cases."""
    try:
        return uuid.UUID(case_id) if case_id else None
    except ValueError:
        return None


async def record_disclosures(ctx: Context, items: list[BatchItem[DisclosureIssued]]) -> None:
    """Batch handler: packages were issued, so those cases produced data, of these accounts (one statement;
    a case named twice in the batch keeps its last package, and a package delivered again changes nothing)."""
    issued = [item.event for item in items]
    last = {i.case_id: i for i in issued if _case_uuid(i.case_id) is not None}
    if not last:
        return
    await ctx.conn.execute(
        "INSERT INTO fulfilments (case_id, outcome, account_id, at)"
        " SELECT c.case_id, 'disclosed', u.account_id, u.at"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u (case_id, account_id, at)"
        " JOIN cases c ON c.case_id = u.case_id"
        " ON CONFLICT (case_id) DO UPDATE SET outcome = 'disclosed', account_id = EXCLUDED.account_id,"
        " at = EXCLUDED.at",
        list(last), [i.account_id for i in last.values()], [i.generated_at for i in last.values()])


def is_fulfilment(envelope: Envelope) -> bool:
    """Subscription.wants of the status topic: of every stage's statuses, only disclosure's closing an approved
    case without data matter here (three statuses of each request are not read any further)."""
    return envelope.data.get("status") in FULFILMENT_STATUSES


async def record_fulfilment(ctx: Context, status: RequestStatus) -> None:
    """An approved disclosure closed without data (no_data, cancelled), kept once per case; every other status
    is not ours to keep."""
    if status.status.value not in FULFILMENT_STATUSES or _case_uuid(status.case_id) is None:
        return
    await ctx.conn.execute(
        "INSERT INTO fulfilments (case_id, outcome, at)"
        " SELECT case_id, $2, $3 FROM cases WHERE case_id = $1::uuid AND status = 'approved' AND kind = 'disclosure'"
        " ON CONFLICT (case_id) DO NOTHING", status.case_id, status.status.value, status.at)
