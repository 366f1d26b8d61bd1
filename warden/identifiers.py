"""How Warden normalises people's identifiers, one definition for every service.

Intake normalises a suspect's identifiers and disclosure normalises its
subscriber feed the same way, so that one resolves against the other.
Error messages name the field, never the value (they reach DLQ headers).
"""
from __future__ import annotations

import phonenumbers

from warden.contract.envelope import EventRejected


def normalise_phone_number(raw: str, field: str = "phone_number") -> str:
    """E.164, or EventRejected. Numbers must carry their country code (`+`)."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise EventRejected("invalid_data", f"{field} is not an international number (+CC...)") from None
    if not phonenumbers.is_possible_number(number):
        raise EventRejected("invalid_data", f"{field} is not a possible E.164 number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_username(raw: str) -> str | None:
    """No leading @, case-folded; None when nothing is left."""
    return raw.strip().lstrip("@").casefold() or None
