"""The disclosure package (DESIGN.md, "The disclosure package"): pure functions.

`build_package` keeps only what was granted: the granted categories, only the
resolved account's records, only what falls inside the granted period.
`seal_for_authority` turns it into what leaves the service: RFC 8785 bytes,
padded, hashed, signed by the platform key and sealed to the authority's key.

What leaves in clear (the event's ids, period, generated_at, `redacted`, `sha256`,
`signature` and the length of `sealed`) must not let anyone confirm or narrow a
guess of the data inside, although everything else in the package is known or
guessable: the package's random `nonce` makes `sha256` and `signature` useless
for checking a guess, `redact` shows no digit beyond the country calling code, and
the padding makes the sealed length follow from what the event shows anyway.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from warden.certificate import certificate_for
from warden.contract.events import Instrument, RedactedView, RequestApproved
from warden.signing import b64, canonical, decode_key

from disclosure.subscribers import Change, held_intervals

# Granted category (as requests name it) -> the package field that carries it.
CATEGORY_FIELDS = {"phone_number": "phone_numbers", "ip_addresses": "ip_addresses"}

NONCE_BYTES = 32

# The sealed bytes are padded to the length they would have if every value only the
# package tells were at its widest, rounded up to a multiple of PADDING_BUCKET. That
# length follows from what the event shows in clear (ids, period, generated_at, how
# many numbers and addresses), so it tells nothing of a number's digits or an
# address's form. The bucket covers, to within its size, anything the widths below
# do not (a value wider than its widest form). Every field of a phone or IP entry
# has its widest form here: sealing a package with another one fails (KeyError).
PADDING_BUCKET = 256
WIDEST = {
    "phone_number": 16,  # E.164: "+" and at most 15 digits
    "ip": 39,  # the longest address normalise_ip writes: IPv6, eight groups of four
    "from": 27, "to": 27, "first_seen": 27, "last_seen": 27,  # timestamp() with microseconds
    "count": 10,  # sessions of one address in one period: below 10**10
}
_PADDING = b'"padding":""'

# Country calling codes (1 to 3 digits, none the prefix of another), as masks show them.
_COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


@dataclass(frozen=True)
class Session:
    account_id: str
    ip: str
    observed_at: datetime


@dataclass(frozen=True)
class SealedPackage:
    box: bytes  # the sealed box of sealed_bytes(package), to the authority's key
    sha256: str  # lowercase hex SHA-256 of sealed_bytes(package)
    signature: str  # base64 Ed25519 signature of sealed_bytes(package) by the platform key

    @property
    def sealed(self) -> str:
        """The box in base64, as events carry it."""
        return base64.b64encode(self.box).decode()


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, microseconds only when there are any: what
    `moment.astimezone(timezone.utc).isoformat()` writes, with `Z` for `+00:00`. orjson writes it
    in a third of isoformat's time, and a package of 30 addresses has 60 of them."""
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode()


def new_nonce() -> bytes:
    """Fresh randomness for `build_package` (the one function here that is not pure)."""
    return os.urandom(NONCE_BYTES)


def build_package(decision: RequestApproved, account_id: str, phone_changes: Iterable[Change],
                  sessions: Iterable[Session], generated_at: datetime, nonce: bytes) -> dict[str, Any]:
    """The package for `account_id`, holding only the granted categories inside the period.

    Inputs may hold other accounts' records and records outside the period: they are
    left out here, whatever the query that fetched them did. Phone intervals are
    clipped to the period, so nothing outside it is told.

    `nonce` (NONCE_BYTES from `new_nonce()`; fixed ones make tests deterministic) is
    the only part of the package nobody outside can know or guess: without it, a
    phone-only package is ids, dates and a number, and the clear `sha256` confirms a
    guessed number in seconds.
    """
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a package nonce is {NONCE_BYTES} bytes")
    start, end = decision.period.start, decision.period.end
    granted = {c for c in decision.data_categories if c in CATEGORY_FIELDS}
    package: dict[str, Any] = {
        "case_id": decision.case_id, "request_id": decision.request_id,
        "authority_id": decision.authority_id, "account_id": account_id,
        "period": {"start": timestamp(start), "end": timestamp(end)},
        "generated_at": timestamp(generated_at),
        "nonce": b64(nonce),
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


def certify(package: dict[str, Any], instrument: Instrument, platform_private_key: str) -> dict[str, Any]:
    """The package with its certificate of authenticity (warden/certificate.py), citing the instrument."""
    return {**package, "certificate": certificate_for(package, instrument.model_dump(mode="json"),
                                                      platform_private_key)}


def is_empty(package: dict[str, Any]) -> bool:
    """No granted category found anything: the case gets `no_data`, not a package."""
    return not any(package.get(field) for field in CATEGORY_FIELDS.values())


def mask_phone_number(number: str) -> str:
    """The country calling code only: `+33 ***` (`***` without a known one).

    Nothing more, because the clear view must not tell one candidate number from
    another: last digits pick the true number out of a list of candidates, and the
    count of hidden digits gives its length. The code is read as the prefix that
    names a country calling code (they are prefix-free), without parsing the rest,
    so numbers of any length with the same code give the same mask.
    """
    if number.startswith("+"):
        for width in (1, 2, 3):
            if number[1:1 + width] in _COUNTRY_CODES:
                return f"+{number[1:1 + width]} ***"
    return "***"


def redact(package: dict[str, Any]) -> RedactedView:
    """What operators may see in clear: masked numbers and a count, no IP address.

    Beyond how many numbers and addresses there are, it tells only each number's
    country calling code: nothing that tells one candidate number from another.
    """
    return RedactedView(
        phone_numbers=[mask_phone_number(p["phone_number"]) for p in package.get("phone_numbers", [])],
        ip_address_count=len(package.get("ip_addresses", [])))


def sealed_bytes(package: dict[str, Any]) -> bytes:
    """The package's RFC 8785 bytes with a `padding` field of spaces (see PADDING_BUCKET)."""
    if "padding" in package:
        raise ValueError("a package gets its padding when sealed")
    body = canonical({**package, "padding": ""})
    short = 0
    for field in CATEGORY_FIELDS.values():
        for entry in package.get(field, ()):
            for key, value in entry.items():
                short += max(0, WIDEST[key] - len(str(value)))
    length = -(-(len(body) + short) // PADDING_BUCKET) * PADDING_BUCKET
    # Spliced rather than serialised twice: `"padding":""` occurs once in the body,
    # as the top-level key (JSON escapes quotes inside strings, and no other object of
    # a package has that key), and spaces are written as they are.
    return body.replace(_PADDING, b'"padding":"' + b" " * (length - len(body)) + b'"', 1)


def seal_for_authority(package: dict[str, Any], authority_public_key: str, platform_private_key: str
                       ) -> SealedPackage:
    """Hash, sign and seal the package's padded RFC 8785 bytes; only the authority can open it."""
    try:
        has_nonce = len(base64.b64decode(package["nonce"], validate=True)) == NONCE_BYTES
    except (KeyError, TypeError, binascii.Error):
        has_nonce = False
    if not has_nonce:
        raise ValueError("a package is sealed only with its nonce: the clear hash would confirm guesses")
    body = sealed_bytes(package)
    return SealedPackage(
        box=bytes(SealedBox(_sealing_key(authority_public_key)).encrypt(body)),
        sha256=hashlib.sha256(body).hexdigest(),
        signature=b64(_signing_key(platform_private_key).sign(body).signature))


# Deriving a key object costs more than using it; both are pure functions of the key text.
@lru_cache(maxsize=64)
def _sealing_key(authority_public_key: str) -> PublicKey:
    return VerifyKey(decode_key(authority_public_key)).to_curve25519_public_key()


@lru_cache(maxsize=4)
def _signing_key(platform_private_key: str) -> SigningKey:
    return SigningKey(decode_key(platform_private_key))
