"""Legal review's handlers: assess each received request; keep confirmed violations."""
from __future__ import annotations

import logging
import uuid

from pydantic import ValidationError

from warden.authorities import authority_of, usable_keys
from warden.contract.envelope import EventRejected
from warden.contract.events import (
    DisclosureIssued, LegalRequest, RequestReceived, RequestStatus, StatusReason, ViolationConfirmed,
    ViolationWithdrawn,
)
from warden.provenance import request_key
from warden.runtime.batch import describe_validation_error
from warden.runtime.service import Context

from legal_review import audit, cases
from legal_review.policy import current_policy
from legal_review.rules import (
    Facts, assess, is_preservation, may_confirm_emergency, provenance_mismatch, retention_window, suspect_key,
)

log = logging.getLogger(__name__)


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
        raise EventRejected("bad_signature", f"the request's signature does not verify with a registered key of "
                                             f"{submitted.authority_id!r}")
    return key


async def review_request(ctx: Context, received: RequestReceived) -> None:
    """Run the policy over a received request: approve, reject, or queue it for humans."""
    authority_key = await verified_request(ctx, received)
    policy = ctx.cache.get("legal_review.policy")
    if policy is None:  # once per batch: a changed policy file applies from the next one
        policy = ctx.cache["legal_review.policy"] = current_policy()
    chain = audit.batch_chain(ctx.cache)  # the chain's tail, known once this batch holds its lock
    request = received.request
    authority = await authority_of(ctx, request.authority_id)
    # Extensions and confirmations read and change earlier cases, maybe opened earlier in this batch:
    # those are written first, and so is this one. Every other case is opened with the batch's inserts.
    # Holds on the suspect bound a new hold and reach data past retention: read them when either matters.
    needs_holds = is_preservation(request) or request.period.start < retention_window(received.received_at,
                                                                                      policy)[0]
    touches_earlier = bool(request.extends_request_id or request.confirms_request_id or needs_holds)
    if touches_earlier:
        await ctx.flush_inserts()
    insert_new = None if touches_earlier else ctx.insert_new
    earlier = None
    if request.extends_request_id:
        earlier = await cases.find_earlier_hold(ctx.conn, request.authority_id, request.extends_request_id)
    holds = await cases.holds_on_suspect(ctx.conn, request, received.received_at) if needs_holds else ()
    assessment = assess(Facts(request, received.received_at, authority, earlier, holds), policy)
    at = received.received_at
    if assessment.outcome == "pending_review":
        case = await cases.open_case(ctx.conn, received, assessment, authority, chain, insert_new, authority_key)
        reasons = [StatusReason(code=r.code, message=r.message) for r in assessment.flagged]
        rows = [cases.status_row(case, "pending_review", reasons, at)] if case else []
    else:  # approved or rejected by the machine: opened and decided in one statement
        case, rows = await cases.open_decided(ctx.conn, received, assessment, authority, chain, insert_new,
                                              authority_key)
    if case is None:
        log.info("case already known, ignored", extra={"case_id": received.case_id})
        return
    ctx.outgoing.extend(rows)
    if case.closed:
        chain.checkpoint_at_commit(ctx)
    if request.confirms_request_id and may_confirm_emergency(assessment, authority, policy):
        await cases.confirm_emergency(ctx.conn, case.country, request.confirms_request_id, case.case_id, at, chain,
                                      suspect_key(request))
    log.info("request assessed", extra={"case_id": case.case_id, "outcome": assessment.outcome,
                                        "flags": assessment.flags, "policy_version": policy.version})


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


async def record_disclosures(ctx: Context, issued: list[DisclosureIssued]) -> None:
    """Batch handler: packages were issued, so those cases produced data, of these accounts (one statement;
    a case named twice in the batch keeps its last package)."""
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


async def record_fulfilment(ctx: Context, status: RequestStatus) -> None:
    """An approved disclosure closed without data (no_data, cancelled); every other status is not ours to keep."""
    if status.status.value not in FULFILMENT_STATUSES or _case_uuid(status.case_id) is None:
        return
    await ctx.conn.execute(
        "INSERT INTO fulfilments (case_id, outcome, at)"
        " SELECT case_id, $2, $3 FROM cases WHERE case_id = $1::uuid AND status = 'approved' AND kind = 'disclosure'"
        " ON CONFLICT (case_id) DO NOTHING", status.case_id, status.status.value, status.at)
