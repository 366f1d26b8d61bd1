"""The disclosure package (DESIGN.md, "The disclosure package"): pure functions.

`build_package` keeps only what was granted: the granted categories, only the
resolved account's records, only what falls inside the granted period.
`seal_for_authority` turns it into what leaves the service: RFC 8785 bytes,
hashed, signed by the platform key and sealed to the authority's key.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import phonenumbers
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from warden.contract.events import RedactedView, RequestApproved
from warden.signing import b64, canonical, decode_key

from disclosure.subscribers import Change, held_intervals

# Granted category (as requests name it) -> the package field that carries it.
CATEGORY_FIELDS = {"phone_number": "phone_numbers", "ip_addresses": "ip_addresses"}


@dataclass(frozen=True)
class Session:
    account_id: str
    ip: str
    observed_at: datetime


@dataclass(frozen=True)
class SealedPackage:
    sealed: str  # base64 sealed box of the canonical bytes
    sha256: str  # lowercase hex of the canonical bytes
    signature: str  # base64 Ed25519 signature of the canonical bytes by the platform key


def timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def build_package(decision: RequestApproved, account_id: str, phone_changes: Iterable[Change],
                  sessions: Iterable[Session], generated_at: datetime) -> dict[str, Any]:
    """The package for `account_id`, holding only the granted categories inside the period.

    Inputs may hold other accounts' records and records outside the period: they are
    left out here, whatever the query that fetched them did. Phone intervals are
    clipped to the period, so nothing outside it is told.
    """
    start, end = decision.period.start, decision.period.end
    granted = {c for c in decision.data_categories if c in CATEGORY_FIELDS}
    package: dict[str, Any] = {
        "case_id": decision.case_id, "request_id": decision.request_id,
        "authority_id": decision.authority_id, "account_id": account_id,
        "period": {"start": timestamp(start), "end": timestamp(end)},
        "generated_at": timestamp(generated_at),
    }
    if "phone_number" in granted:
        held = [h for h in held_intervals(c for c in phone_changes if c.account_id == account_id)
                if h.overlaps(start, end)]
        package["phone_numbers"] = [
            {"phone_number": h.value, "from": timestamp(max(h.start, start)),
             "to": timestamp(end if h.end is None else min(h.end, end))}
            for h in sorted(held, key=lambda h: h.start)]
    if "ip_addresses" in granted:
        seen: dict[str, list] = {}
        for s in sessions:
            if s.account_id != account_id or not start <= s.observed_at <= end:
                continue
            entry = seen.setdefault(s.ip, [s.observed_at, s.observed_at, 0])
            entry[0], entry[1], entry[2] = min(entry[0], s.observed_at), max(entry[1], s.observed_at), entry[2] + 1
        package["ip_addresses"] = [
            {"ip": ip, "first_seen": timestamp(first), "last_seen": timestamp(last), "count": count}
            for ip, (first, last, count) in sorted(seen.items(), key=lambda kv: (kv[1][0], kv[0]))]
    return package


def is_empty(package: dict[str, Any]) -> bool:
    """No granted category found anything: the case gets `no_data`, not a package."""
    return not any(package.get(field) for field in CATEGORY_FIELDS.values())


def mask_phone_number(number: str) -> str:
    """Country code and last three digits only: `+33******002`."""
    digits = number.lstrip("+")
    try:
        country = str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    if not digits.startswith(country):
        country = ""
    hidden = len(digits) - len(country) - 3
    if hidden < 1:
        return "+" + "*" * len(digits)
    return "+" + country + "*" * hidden + digits[-3:]


def redact(package: dict[str, Any]) -> RedactedView:
    """What operators may see in clear: masked numbers and a count, no IP address."""
    return RedactedView(
        phone_numbers=[mask_phone_number(p["phone_number"]) for p in package.get("phone_numbers", [])],
        ip_address_count=len(package.get("ip_addresses", [])))


def seal_for_authority(package: dict[str, Any], authority_public_key: str, platform_private_key: str
                       ) -> SealedPackage:
    """Hash, sign and seal the package's RFC 8785 bytes; only the authority can open it."""
    body = canonical(package)
    return SealedPackage(
        sealed=base64.b64encode(SealedBox(_sealing_key(authority_public_key)).encrypt(body)).decode(),
        sha256=hashlib.sha256(body).hexdigest(),
        signature=b64(_signing_key(platform_private_key).sign(body).signature))


# Deriving a key object costs more than using it; both are pure functions of the key text.
@lru_cache(maxsize=64)
def _sealing_key(authority_public_key: str) -> PublicKey:
    return VerifyKey(decode_key(authority_public_key)).to_curve25519_public_key()


@lru_cache(maxsize=4)
def _signing_key(platform_private_key: str) -> SigningKey:
    return SigningKey(decode_key(platform_private_key))
