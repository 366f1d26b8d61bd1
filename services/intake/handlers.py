"""Intake's handlers: verify, deduplicate, normalise, emit (submissions: a batch handler, one insert per batch)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from warden.authorities import authority_of
from warden.contract.envelope import EventRejected, UnknownYet, now, unframe
from warden.contract.events import LegalRequest, RequestReceived, StatusReason, status_events
from warden.identifiers import case_id_for, normalise_suspect
from warden.runtime.service import BatchItem, Context
from warden.signing import signed_bytes, verify

from intake.rules import fingerprint

log = logging.getLogger(__name__)


def tell(to: Context | BatchItem, **status) -> None:
    """A status for the authority: in full on legal.requests.progress, shared on legal.requests.status."""
    for event in status_events(**status):
        to.emit(event)


async def verify_request(ctx: Context, item: BatchItem[LegalRequest]) -> None:
    """EventRejected unless the request is signed by its registered, active authority."""
    request = item.event
    authority = await authority_of(ctx, request.authority_id)
    if authority is None:
        raise UnknownYet("unknown_authority", f"authority {request.authority_id!r} is not registered")
    if authority.status != "active":
        raise EventRejected("revoked_authority", f"authority {request.authority_id!r} is revoked")
    if not verify(signed_bytes(item.envelope.data), request.signature, authority.public_key):
        raise UnknownYet("bad_signature",
                         f"signature does not verify with the registered key of {request.authority_id!r}")


@dataclass
class Submission:
    item: BatchItem[LegalRequest]
    case_id: str
    fingerprint: str
    received_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        return self.item.event.authority_id, self.item.event.request_id


async def receive_requests(ctx: Context, items: list[BatchItem[LegalRequest]]) -> None:
    """Batch handler: verify each request (one that fails is rejected alone), store the batch's new
    submissions in one statement, and announce each one stored. A request whose (authority, request id)
    is already stored, earlier or by a batch-mate before it, is an identical resubmission (ignored) or
    a conflicting one (refused to the authority)."""
    submissions = []
    for item in items:
        try:
            await verify_request(ctx, item)
        except EventRejected as rejected:
            item.reject(rejected)
            continue
        request = item.event
        submissions.append(Submission(item, case_id_for(request.authority_id, request.request_id),
                                      fingerprint(item.envelope.data), now()))
    first: dict[tuple[str, str], Submission] = {}
    for submission in submissions:
        first.setdefault(submission.key, submission)
    candidates = list(first.values())
    stored = {(r["authority_id"], r["request_id"]) for r in await ctx.conn.fetch(
        """INSERT INTO submissions (authority_id, request_id, fingerprint, case_id, received_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[])
           ON CONFLICT (authority_id, request_id) DO NOTHING RETURNING authority_id, request_id""",
        [s.key[0] for s in candidates], [s.key[1] for s in candidates], [s.fingerprint for s in candidates],
        [s.case_id for s in candidates], [s.received_at for s in candidates])} if candidates else set()
    for submission in submissions:
        if first[submission.key] is submission and submission.key in stored:
            announce(submission)
        else:
            await _refuse_or_ignore_replay(ctx, submission)


def announce(submission: Submission) -> None:
    item, request = submission.item, submission.item.event
    normalised = request.model_copy(update={"suspect": normalise_suspect(request.suspect)})
    item.emit(RequestReceived(case_id=submission.case_id, received_at=submission.received_at, request=normalised,
                              submitted=item.envelope.data))
    tell(item, request_id=request.request_id, authority_id=request.authority_id, case_id=submission.case_id,
         status="received", at=submission.received_at)
    log.info("request received", extra={"case_id": submission.case_id, "authority_id": request.authority_id,
                                        "schema_id": item.envelope.schema_id})


async def _refuse_or_ignore_replay(ctx: Context, submission: Submission) -> None:
    request = submission.item.event
    earlier = await ctx.conn.fetchrow(
        "SELECT fingerprint, case_id FROM submissions WHERE authority_id = $1 AND request_id = $2",
        request.authority_id, request.request_id)
    if earlier["fingerprint"] == submission.fingerprint:
        log.info("identical request resubmitted, ignored", extra={"case_id": str(earlier["case_id"])})
        return
    tell(submission.item,
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
