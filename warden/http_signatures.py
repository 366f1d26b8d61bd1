"""HTTP Message Signatures (RFC 9421, ed25519) as the authority API uses them, both sides.

The signature format, its base and Content-Digest (RFC 9530) are the
`http-message-signatures` library's; what Warden requires of a signature is here:
one signature, `keyid` = the authority id, `alg` ed25519 if named, `created`
within `WINDOW` of the clock, covering `@method`, `@target-uri` and, with a body,
`content-digest`. The signer adds a random `nonce`, so that two identical calls
in the same second still carry distinct signatures (the server accepts each
signature once). Replays and key look-up are the server's (services/intake).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from warden.signing import decode_key

LABEL = "warden"
WINDOW = timedelta(minutes=5)
REQUIRED_COMPONENTS = ("@method", "@target-uri")
BODY_COMPONENT = "content-digest"


class SignatureRefused(Exception):
    """The call is not authenticated; `code` names why, `message` says it to the caller."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class HttpMessage:
    """The request as the library reads it: method, absolute URL, headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SignatureInput:
    keyid: str
    created: int | None
    alg: str | None
    covered: tuple[str, ...]


def sign_request(method: str, url: str, body: bytes | None, authority_id: str, private_key_b64: str,
                 *, created: datetime | None = None) -> dict[str, str]:
    """The headers that sign the call as the authority: Signature-Input, Signature, and Content-Digest with a body."""
    key = Ed25519PrivateKey.from_private_bytes(decode_key(private_key_b64))
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                               key_resolver=MappingKeyResolver(public_keys={}, private_keys={authority_id: key}))
    message = HttpMessage(method.upper(), url)
    signer.sign(message, key_id=authority_id, created=created or datetime.now(timezone.utc),
                nonce=secrets.token_urlsafe(16), label=LABEL, covered_component_ids=REQUIRED_COMPONENTS,
                body=body if body else None)
    return message.headers


def read_signature_input(headers: dict[str, str]) -> SignatureInput:
    """The one signature's parameters, before any key is looked up."""
    raw_input, raw_signature = headers.get("signature-input"), headers.get("signature")
    if not raw_input or not raw_signature:
        raise SignatureRefused("missing_signature",
                               "the call carries no HTTP Message Signature (Signature-Input and Signature headers)")
    try:
        parsed = http_sf.parse(raw_input.encode(), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise SignatureRefused("malformed_signature", "Signature-Input is not a structured field dictionary") from None
    if len(parsed) != 1:
        raise SignatureRefused("malformed_signature", "exactly one signature is expected")
    ((_, (members, params)),) = parsed.items()
    if not isinstance(members, list):
        raise SignatureRefused("malformed_signature", "Signature-Input must list the covered components")
    keyid, created, alg = params.get("keyid"), params.get("created"), params.get("alg")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureRefused("missing_keyid", "the signature names no keyid (the authority id)")
    if created is not None and type(created) is not int:
        raise SignatureRefused("malformed_signature", "created must be an integer (seconds since the epoch)")
    return SignatureInput(keyid=keyid, created=created, alg=alg if isinstance(alg, str) else None,
                          covered=tuple(str(name) for name, _ in members))


def check_signature_input(signed: SignatureInput, *, has_body: bool, at: datetime,
                          window: timedelta = WINDOW) -> None:
    """Warden's rules for a signature, before its cryptography: algorithm, freshness, coverage."""
    if signed.alg is not None and signed.alg != "ed25519":
        raise SignatureRefused("unsupported_algorithm", f"alg {signed.alg!r} is not accepted; sign with ed25519")
    if signed.created is None:
        raise SignatureRefused("missing_created", "the signature has no created parameter")
    created = datetime.fromtimestamp(signed.created, timezone.utc)
    if created < at - window:
        raise SignatureRefused("stale_signature",
                               f"the signature was created more than {int(window.total_seconds())} s ago; sign anew")
    if created > at + window:
        raise SignatureRefused("future_signature",
                               f"the signature is created more than {int(window.total_seconds())} s ahead of the "
                               "server's clock; check the signer's clock")
    required = REQUIRED_COMPONENTS + ((BODY_COMPONENT,) if has_body else ())
    missing = [c for c in required if c not in signed.covered]
    if missing:
        raise SignatureRefused("missing_component", f"the signature must cover {', '.join(missing)}")


def verify_signature(message: HttpMessage, body: bytes, authority_id: str, public_keys: list[str],
                     window: timedelta = WINDOW) -> None:
    """The signature verifies with one of the keys, and the body matches its signed Content-Digest."""
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=None)
    verifier.max_clock_skew = window  # freshness is check_signature_input's, with its own reasons
    required = REQUIRED_COMPONENTS + ((BODY_COMPONENT,) if body else ())
    reason = "the signature does not verify with the authority's registered keys"
    for public_key in public_keys:
        verifier.key_resolver = MappingKeyResolver(
            public_keys={authority_id: Ed25519PublicKey.from_public_bytes(decode_key(public_key))}, private_keys={})
        try:
            results = verifier.verify(message, max_age=window, require_components=required)
        except (InvalidSignature, HTTPMessageSignaturesException) as exc:
            if str(exc):
                reason = f"the signature does not verify: {exc}"
            continue
        try:
            verifier.verify_body(message, results, body)
        except (InvalidSignature, HTTPMessageSignaturesException):
            raise SignatureRefused("digest_mismatch",
                                   "the body does not match the signed Content-Digest (changed after signing?)"
                                   ) from None
        return
    raise SignatureRefused("bad_signature", reason)
