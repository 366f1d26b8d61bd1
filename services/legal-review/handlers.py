"""Legal review's handlers: assess each received request; keep confirmed violations."""
from __future__ import annotations

import logging

from warden.authorities import find_authority
from warden.contract.events import RejectionReason, RequestReceived, StatusReason, ViolationConfirmed
from warden.runtime.service import Context

from legal_review import cases
from legal_review.policy import current_policy
from legal_review.rules import Facts, assess, may_confirm_emergency

log = logging.getLogger(__name__)


async def review_request(ctx: Context, received: RequestReceived) -> None:
    """Run the policy over a received request: approve, reject, or queue it for humans."""
    policy = current_policy()
    request = received.request
    authority = await find_authority(ctx.conn, request.authority_id)
    earlier = None
    if request.extends_request_id:
        earlier = await cases.find_earlier_hold(ctx.conn, request.authority_id, request.extends_request_id)
    assessment = assess(Facts(request, received.received_at, authority, earlier), policy)
    case = await cases.open_case(ctx.conn, received, assessment, authority)
    if case is None:
        log.info("case already known, ignored", extra={"case_id": received.case_id})
        return
    at = received.received_at
    decided_by = [cases.machine_actor(case)]
    if assessment.outcome == "approved":
        ctx.outgoing.extend(await cases.approve(ctx.conn, case, decided_by, at))
    elif assessment.outcome == "rejected":
        reasons = [RejectionReason(code=r.code, rule=r.rule, message=r.message) for r in assessment.failed]
        ctx.outgoing.extend(await cases.reject(ctx.conn, case, reasons, decided_by, at))
    else:
        reasons = [StatusReason(code=r.code, message=r.message) for r in assessment.flagged]
        ctx.outgoing.append(cases.status_row(case, "pending_review", reasons, at))
    if request.confirms_request_id and may_confirm_emergency(assessment, authority, policy):
        await cases.confirm_emergency(ctx.conn, case.country, request.confirms_request_id, case.case_id, at)
    log.info("request assessed", extra={"case_id": case.case_id, "outcome": assessment.outcome,
                                        "flags": assessment.flags, "policy_version": policy.version})


async def record_violation(ctx: Context, violation: ViolationConfirmed) -> None:
    """Reviewers see a suspect's confirmed violations when they read a case."""
    await ctx.conn.execute(
        "INSERT INTO violations (account_id, content_id, category, decided_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING",
        violation.account_id, violation.content_id, violation.category, violation.decided_at)
