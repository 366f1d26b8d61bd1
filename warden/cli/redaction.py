"""Personal data out of what operators' commands print (`warden events tail`, `warden dlq show`).

Two nets: fields that name a person or hold their identifiers are replaced whatever they hold
(an account id, a username, a phone number, an IP address, at any depth: a request's suspect, a
subscriber update, a report's reporter), and every other string is scanned for IP addresses and
international phone numbers (free text such as an offense description or a report comment).
A Kafka key is redacted when the topic is keyed by such a field.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

import phonenumbers

from warden.contract.topics import DLQ_SUFFIX, TOPICS

REDACTED = "[redacted]"
PERSONAL_FIELDS = frozenset({
    "account_id", "owner_account_id", "reporter_id", "username", "phone_number", "phone_numbers", "ip",
    "ip_addresses",
})
# Candidates only: each is confirmed by the ipaddress module before it is replaced.
_IP_CANDIDATE = re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])")


def redact(value: Any) -> Any:
    """A copy of a decoded event (or any JSON value) with personal data replaced by `[redacted]`."""
    if isinstance(value, dict):
        return {k: REDACTED if k in PERSONAL_FIELDS and value[k] not in (None, [], {}) else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """IP addresses and international (+) phone numbers in free text replaced."""
    if "." in text or ":" in text:
        text = _IP_CANDIDATE.sub(lambda m: REDACTED if _is_ip(m.group(0)) else m.group(0), text)
    if "+" in text:
        for match in reversed(list(phonenumbers.PhoneNumberMatcher(text, None, leniency=phonenumbers.Leniency.POSSIBLE))):
            text = text[:match.start] + REDACTED + text[match.end:]
    return text


def redact_key(topic: str, key: bytes | None) -> str | None:
    """The record's key as text, or `[redacted]` when the topic is keyed by a personal field."""
    if key is None:
        return None
    base = TOPICS.get(topic.removesuffix(DLQ_SUFFIX))
    if base is not None and base.key.rsplit(".", 1)[-1] in PERSONAL_FIELDS:
        return REDACTED
    return key.decode(errors="replace")


def _is_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True
