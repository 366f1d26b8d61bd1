"""How Warden normalises people's identifiers, one definition for every service.

Intake normalises a suspect's identifiers and disclosure normalises its
subscriber feed the same way, so that one resolves against the other.
Error messages name the field, never the value (they reach DLQ headers).
"""
from __future__ import annotations

import uuid

import phonenumbers

from warden.contract.envelope import EventRejected
from warden.contract.events import Suspect

_CASE_NAMESPACE = uuid.UUID("6f1c1d2e-8a57-4d0e-9a43-2f3f5b0d7c11")


def case_id_for(authority_id: str, request_id: str) -> str:
    """A request's case id: stable, so a request re-read after a crash maps to the same case, and
    derivable by every service from the signed request alone."""
    return str(uuid.uuid5(_CASE_NAMESPACE, f"{authority_id}\x00{request_id}"))


def normalise_suspect(suspect: Suspect) -> Suspect:
    """The identifiers disclosure resolves against its subscriber store."""
    username = normalise_username(suspect.username) if suspect.username else None
    if suspect.username and username is None:
        raise EventRejected("invalid_data", "suspect.username is empty once normalised")
    return Suspect(
        account_id=suspect.account_id.strip() if suspect.account_id else None,
        username=username,
        phone_number=normalise_phone_number(suspect.phone_number, "suspect.phone_number")
        if suspect.phone_number else None,
    )


# What a written phone number may hold besides its digits: the leading +, spaces and the usual separators.
_PHONE_PUNCTUATION = frozenset("+ -.()/\u00a0")


def normalise_phone_number(raw: str, field: str = "phone_number") -> str:
    """E.164, or EventRejected. Numbers must carry their country code (`+`).

    Only digits and separators are read: letters are refused rather than mapped to keypad digits
    (a "vanity" spelling would name another person's number), and so is an extension (E.164 has
    none; dropping it would name the switchboard, not the person).
    """
    if any(c.isalpha() for c in raw):
        raise EventRejected("invalid_data", f"{field} holds letters (a vanity number or an extension): "
                                            "give the digits of the E.164 number only")
    if any(not (c.isdigit() or c in _PHONE_PUNCTUATION) for c in raw):
        raise EventRejected("invalid_data", f"{field} holds characters other than digits and separators "
                                            "(an extension?): give the E.164 number only")
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise EventRejected("invalid_data", f"{field} is not an international number (+CC...)") from None
    if number.extension:
        raise EventRejected("invalid_data", f"{field} holds an extension: give the E.164 number only")
    if not phonenumbers.is_possible_number(number):
        raise EventRejected("invalid_data", f"{field} is not a possible E.164 number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_username(raw: str) -> str | None:
    """No leading @, case-folded; None when nothing is left."""
    return raw.strip().lstrip("@").casefold() or None
