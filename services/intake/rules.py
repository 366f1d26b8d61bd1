"""Intake's domain rules: pure functions, no I/O."""
from __future__ import annotations

import hashlib
import uuid
from typing import Any

import phonenumbers

from warden.contract.envelope import EventRejected
from warden.contract.events import Suspect
from warden.signing import canonical

_CASE_NAMESPACE = uuid.UUID("6f1c1d2e-8a57-4d0e-9a43-2f3f5b0d7c11")


def case_id_for(authority_id: str, request_id: str) -> str:
    """Stable, so a request re-read after a crash maps to the same case."""
    return str(uuid.uuid5(_CASE_NAMESPACE, f"{authority_id}\x00{request_id}"))


def fingerprint(request_data: dict[str, Any]) -> str:
    """Identifies a request's content: the same request sent twice has the same fingerprint."""
    return hashlib.sha256(canonical(request_data)).hexdigest()


def normalise_phone_number(raw: str) -> str:
    """E.164, or EventRejected. Numbers must carry their country code (`+`)."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise EventRejected("invalid_data", "suspect.phone_number is not an international number (+CC...)") from None
    if not phonenumbers.is_possible_number(number):
        raise EventRejected("invalid_data", "suspect.phone_number is not a possible E.164 number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_username(raw: str) -> str:
    username = raw.strip().lstrip("@").casefold()
    if not username:
        raise EventRejected("invalid_data", "suspect.username is empty once normalised")
    return username


def normalise_suspect(suspect: Suspect) -> Suspect:
    """The identifiers disclosure resolves against its subscriber store."""
    return Suspect(
        account_id=suspect.account_id.strip() if suspect.account_id else None,
        username=normalise_username(suspect.username) if suspect.username else None,
        phone_number=normalise_phone_number(suspect.phone_number) if suspect.phone_number else None,
    )
