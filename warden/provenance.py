"""What the legal pipeline's signatures cover, one definition for every service (DESIGN.md, "Trust model").

- A request is the authority's when its Ed25519 signature over the RFC 8785 form of the
  request as submitted (without `signature`) verifies with a key registered for it. The
  request travels unchanged from intake onwards (`submitted`, then `signed_request`).
- A decision is legal review's when its `decision_signature` over the RFC 8785 form of
  the event's data without `decision_signature` verifies with the key `decision_key_id` names.
"""
from __future__ import annotations

from typing import Any

from warden.contract.envelope import EventRejected
from warden.keys import key_id, public_key_of
from warden.signing import canonical, sign, signed_bytes, verify


def request_key(submitted: dict[str, Any], candidate_keys: list[str]) -> str | None:
    """The first of the candidate public keys under which the submitted request's signature verifies."""
    signature = submitted.get("signature")
    if not isinstance(signature, str):
        return None
    message = signed_bytes(submitted)
    return next((key for key in candidate_keys if verify(message, signature, key)), None)


def decision_bytes(data: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in data.items() if k != "decision_signature"})


def sign_decision(data: dict[str, Any], private_key: str) -> dict[str, Any]:
    """The decision's data with `decision_key_id` and `decision_signature` set."""
    body = {k: v for k, v in data.items() if k != "decision_signature"}
    body["decision_key_id"] = key_id(public_key_of(private_key))
    return dict(body, decision_signature=sign(decision_bytes(body), private_key))


def verify_decision(data: dict[str, Any], keys: dict[str, str]) -> str:
    """The key id that signed the decision, or EventRejected saying what is wrong."""
    signature, signer = data.get("decision_signature"), data.get("decision_key_id")
    if not signature or not signer:
        raise EventRejected("unsigned_decision", "decision carries no legal-review decision signature")
    key = keys.get(signer)
    if key is None:
        raise EventRejected("unknown_decision_key",
                            f"decision signed by key {str(signer)[:16]!r}, not a configured legal-review key")
    if not isinstance(signature, str) or not verify(decision_bytes(data), signature, key):
        raise EventRejected("bad_decision_signature", f"decision signature of key {signer} does not verify")
    return signer


# What an amendment may change in the request it answers; everything else stays as first signed.
AMENDABLE = ("data_categories", "period")


def signed_by(document: dict[str, Any], key: str) -> bool:
    """The authority's signature over a signed document (request, amendment, withdrawal) verifies with `key`."""
    return request_key(document, [key]) is not None


def amended_request(submitted: dict[str, Any], amendments: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The signed request with its signed amendments applied in order: what the authority asks for now.

    Each amendment must name the request (same authority and request id) and verify with `key`, the key
    the request verified with; EventRejected otherwise. The result keeps the request's own signature,
    which no longer covers it: it is only read, never verified again.
    """
    effective = dict(submitted)
    for amendment in amendments:
        if not isinstance(amendment, dict) or (amendment.get("authority_id"), amendment.get("request_id")) != (
                submitted.get("authority_id"), submitted.get("request_id")):
            raise EventRejected("amendment_mismatch", "an amendment names another request than the signed one")
        if not signed_by(amendment, key):
            raise EventRejected("bad_amendment_signature",
                                "an amendment does not verify with the key the request verified with")
        effective.update({field: amendment[field] for field in AMENDABLE if amendment.get(field) is not None})
    return effective
