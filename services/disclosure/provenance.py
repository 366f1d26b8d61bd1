"""Disclosure acts on a decision only once it is traced back to signed origins (DESIGN.md, "Trust model").

In order: legal review's decision signature, the authority's signature over the request as
submitted (with the key the decision pins) and over each of its amendments, the approval within
that request as amended, and the pinned
key still registered for the authority in disclosure's own registry projection. Each failure
is an EventRejected with its own reason: the approval goes to the DLQ and nothing happens.
"""
from __future__ import annotations

from functools import lru_cache

from pydantic import ValidationError

from warden.authorities import key_standing
from warden.contract.envelope import Envelope, EventRejected, UnknownYet
from warden.contract.events import LegalRequest, RequestApproved
from warden.keys import public_keys
from warden.provenance import amended_request, request_key, verify_decision
from warden.runtime.service import ConfigurationError, Context

from disclosure.scope import out_of_scope
from disclosure.settings import DisclosureSettings


@lru_cache(maxsize=4)
def _decision_keys(configured: str) -> dict[str, str]:
    return public_keys(configured)


def require_decision_keys(_runtime_settings=None) -> None:
    """Startup check."""
    try:
        keys = _decision_keys(DisclosureSettings().decision_public_keys)
    except ValueError as exc:
        raise ConfigurationError(f"WARDEN_DECISION_PUBLIC_KEYS: {exc}") from None
    if not keys:
        raise ConfigurationError("WARDEN_DECISION_PUBLIC_KEYS is not set: disclosure acts only on decisions "
                                 "signed by legal review's keys (docs/deployment.md, 'Keys'); `warden up` sets "
                                 "a development key")


def verify_signed_decision(envelope: Envelope, settings: DisclosureSettings) -> None:
    verify_decision(envelope.data, _decision_keys(settings.decision_public_keys))


async def verify_approval(ctx: Context, approval: RequestApproved) -> bool:
    """True when the approval may act; False when its authority's key was revoked since (the case is
    closed without effect); EventRejected when it cannot be traced to a signed request."""
    if approval.signed_request is None or approval.authority_key is None:
        raise EventRejected("unsigned_request", "approval carries no signed request or pinned authority key")
    try:
        request = LegalRequest.model_validate(approval.signed_request)
    except ValidationError:
        raise EventRejected("unsigned_request", "approval's signed request is not a valid request") from None
    if request_key(approval.signed_request, [approval.authority_key]) is None:
        raise EventRejected("bad_request_signature",
                            "the signed request does not verify with the authority key the approval pins")
    if approval.signed_amendments:  # the request as the authority amended it, each amendment signed
        try:
            request = LegalRequest.model_validate(amended_request(
                approval.signed_request, approval.signed_amendments, approval.authority_key))
        except ValidationError:
            raise EventRejected("unsigned_request", "the amended request is not a valid request") from None
    problem = out_of_scope(approval, request)
    if problem:
        raise EventRejected("decision_out_of_scope", problem)
    standing = await key_standing(ctx, approval.authority_id, approval.authority_key)
    if standing is None:
        raise UnknownYet("unregistered_authority_key",
                         f"the pinned key is not registered for {approval.authority_id!r}")
    return standing == "active"
