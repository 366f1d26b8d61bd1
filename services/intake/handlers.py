"""Intake's handlers: verify, deduplicate, normalise, emit."""
from __future__ import annotations

import json
import logging

from warden.authorities import authority_of
from warden.contract.envelope import EventRejected, now, unframe
from warden.contract.events import LegalRequest, RequestReceived, StatusReason, status_events
from warden.identifiers import case_id_for, normalise_suspect
from warden.runtime.service import Context
from warden.signing import signed_bytes, verify

from intake.rules import fingerprint

log = logging.getLogger(__name__)


def tell(ctx: Context, **status) -> None:
    """A status for the authority: in full on legal.requests.progress, shared on legal.requests.status."""
    for event in status_events(**status):
        ctx.emit(event)


async def receive_request(ctx: Context, request: LegalRequest) -> None:
    authority = await authority_of(ctx, request.authority_id)
    if authority is None:
        raise EventRejected("unknown_authority", f"authority {request.authority_id!r} is not registered")
    if authority.status != "active":
        raise EventRejected("revoked_authority", f"authority {request.authority_id!r} is revoked")
    assert ctx.envelope is not None
    if not verify(signed_bytes(ctx.envelope.data), request.signature, authority.public_key):
        raise EventRejected("bad_signature",
                            f"signature does not verify with the registered key of {request.authority_id!r}")
    normalised = request.model_copy(update={"suspect": normalise_suspect(request.suspect)})

    case_id = case_id_for(request.authority_id, request.request_id)
    content = fingerprint(ctx.envelope.data)
    received_at = now()
    stored = await ctx.insert_new(
        """INSERT INTO submissions (authority_id, request_id, fingerprint, case_id, received_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (authority_id, request_id) DO NOTHING RETURNING case_id""",
        request.authority_id, request.request_id, content, case_id, received_at)
    if not stored:
        await _refuse_or_ignore_replay(ctx, request, content)
        return
    ctx.emit(RequestReceived(
        case_id=case_id, received_at=received_at, request=normalised, submitted=ctx.envelope.data))
    tell(ctx, request_id=request.request_id, authority_id=request.authority_id, case_id=case_id,
         status="received", at=received_at)
    log.info("request received", extra={"case_id": case_id, "authority_id": request.authority_id,
                                        "schema_id": ctx.envelope.schema_id})


async def _refuse_or_ignore_replay(ctx: Context, request: LegalRequest, content: str) -> None:
    earlier = await ctx.conn.fetchrow(
        "SELECT fingerprint, case_id FROM submissions WHERE authority_id = $1 AND request_id = $2",
        request.authority_id, request.request_id)
    if earlier["fingerprint"] == content:
        log.info("identical request resubmitted, ignored", extra={"case_id": str(earlier["case_id"])})
        return
    tell(ctx,
        request_id=request.request_id, authority_id=request.authority_id, case_id=str(earlier["case_id"]),
        status="invalid", at=now(), reasons=[StatusReason(
            code="conflicting_resubmission",
            message="request_id already used for a request with different content; use a new request_id")])
    log.info("conflicting resubmission refused", extra={"case_id": str(earlier["case_id"])})


async def report_invalid_request(ctx: Context, rejection: EventRejected) -> None:
    """Tell the authority its request is invalid, when the event says who sent which request."""
    data = ctx.envelope.data if ctx.envelope else attributable_data(ctx.raw_value, ctx.binary_mode)
    authority_id, request_id = data.get("authority_id"), data.get("request_id")
    if not (isinstance(authority_id, str) and isinstance(request_id, str) and authority_id and request_id):
        return
    if len(authority_id) > 128 or len(request_id) > 128:
        return
    tell(ctx, request_id=request_id, authority_id=authority_id, status="invalid", at=now(),
         reasons=[StatusReason(code=rejection.reason, message=rejection.error)])


def attributable_data(raw: bytes | None, binary_mode: bool) -> dict:
    """Best effort to name the sender of an event that failed before decoding (oversized, bad envelope).

    Bounded: events past this size are not worth parsing just to attribute them.
    """
    if not raw or len(raw) > 1024 * 1024:
        return {}
    try:
        parsed = json.loads(unframe(raw)[0])
    except (ValueError, UnicodeDecodeError, RecursionError, EventRejected):
        return {}
    if not isinstance(parsed, dict):
        return {}
    data = parsed if binary_mode else parsed.get("data")
    return data if isinstance(data, dict) else {}
