"""What operators' commands print carries no personal data unless asked: fields and free text."""
from datetime import datetime, timedelta, timezone

import click
import pytest

from warden.cli.common import SINCE
from warden.cli.redaction import REDACTED, redact, redact_key, redact_text
from warden.contract.examples import EXAMPLES


def test_every_personal_field_of_every_example_event_is_redacted():
    personal = ("+33612345678", "+33 6 12 34 56 78", "dealer_42", "Dealer_42", "acct-1029", "acct-8812",
                "203.0.113.7")
    for event_type, data in EXAMPLES.items():
        shown = repr(redact(data))
        assert not [p for p in personal if p in shown], event_type
    request = redact(EXAMPLES["warden.legal.request.received.v1"])
    assert request["request"]["suspect"] == {"account_id": None, "username": REDACTED, "phone_number": REDACTED}
    assert request["case_id"] == EXAMPLES["warden.legal.request.received.v1"]["case_id"]
    assert request["request"]["offense"]["statute"] == "Code pénal, art. 222-37"


@pytest.mark.parametrize("text, kept", [
    ("calls from +44 20 7946 0958 at night", "calls from [redacted] at night"),
    ("logged in from 198.51.100.23, then 2001:db8::7 again", "logged in from [redacted], then [redacted] again"),
    ("case RG 26/04711 issued 2026-11-20T09:30:00+01:00, art. 222-37, 12:30", None),
    ("version 1.2.3.4.5 and ratio 3:4", None),
])
def test_free_text_loses_ip_addresses_and_phone_numbers_only(text, kept):
    assert redact_text(text) == (kept if kept is not None else text)


def test_keys_that_name_a_person_are_redacted():
    assert redact_key("platform.subscribers", b"acct-1029") == REDACTED
    assert redact_key("moderation.violations.dlq", b"acct-1029") == REDACTED
    assert redact_key("legal.requests.submitted", b"fr-tj-paris") == "fr-tj-paris"


def test_since_takes_a_time_or_an_age():
    assert SINCE.convert("2026-12-01T08:00Z", None, None) == datetime(2026, 12, 1, 8, tzinfo=timezone.utc)
    assert SINCE.convert("2026-12-01T08:00", None, None).tzinfo == timezone.utc
    before = datetime.now(timezone.utc)
    moment = SINCE.convert("2h", None, None)
    assert before - timedelta(hours=2) <= moment <= datetime.now(timezone.utc) - timedelta(hours=2)
    with pytest.raises(click.BadParameter):
        SINCE.convert("yesterday", None, None)
