"""Statements of reasons (DSA Art. 17) and appeal admissibility (Art. 20)."""
from datetime import datetime, timedelta, timezone

import pytest

from moderation.config import ModerationConfig
from moderation.statements import add_months, appeal_refusal, automation, statement

AT = datetime(2026, 8, 31, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("moment, months, expected", [
    (AT, 6, datetime(2027, 2, 28, 10, tzinfo=timezone.utc)),
    (datetime(2026, 1, 15, tzinfo=timezone.utc), 6, datetime(2026, 7, 15, tzinfo=timezone.utc)),
    (datetime(2026, 7, 1, tzinfo=timezone.utc), 6, datetime(2027, 1, 1, tzinfo=timezone.utc)),
])
def test_add_months(moment, months, expected):
    assert add_months(moment, months) == expected


@pytest.mark.parametrize("detected, human, expected", [
    (True, False, "FULLY"), (False, False, "FULLY"), (True, True, "PARTIALLY"), (False, True, "NOT_AUTOMATED"),
])
def test_automation(detected, human, expected):
    assert automation(detected, human) == expected


def test_statement_names_ground_category_scope_and_appeal_deadline():
    sor = statement(content_id="c1", action="delist", reason="weapons", facts="f", automated_detection=False,
                    human=True, decided_at=AT, cfg=ModerationConfig(territorial_scope=["FR", "DE"]))
    assert (sor.ground, sor.category) == ("DECISION_GROUND_ILLEGAL_CONTENT",
                                          "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS")
    assert sor.appealable_until == add_months(AT, 6) and sor.territorial_scope == ["FR", "DE"]
    assert sor.automated_decision == "NOT_AUTOMATED"


UNTIL = AT + timedelta(days=180)


@pytest.mark.parametrize("found, owner, delisted, submitted, code", [
    (True, True, True, AT + timedelta(days=1), None),
    (False, True, True, AT, "no_decision"),
    (True, False, True, AT, "not_owner"),
    (True, True, True, UNTIL + timedelta(seconds=1), "window_closed"),
    (True, True, False, AT, "not_delisted"),
])
def test_appeal_refusal(found, owner, delisted, submitted, code):
    refusal = appeal_refusal(decision_found=found, owner_matches=owner, delisted=delisted, submitted_at=submitted,
                             appealable_until=UNTIL if found else None)
    assert (refusal.split(":")[0] if refusal else None) == code


def test_tokens_from_json_environment(monkeypatch):
    monkeypatch.setenv("WARDEN_MODERATION_TOKENS", '{"t1": {"name": "maria", "roles": ["moderator"]}}')
    monkeypatch.setenv("WARDEN_MODERATION_TRUSTED_FLAGGERS", '["org-a"]')
    cfg = ModerationConfig()
    assert cfg.tokens["t1"].name == "maria" and cfg.trusted_flaggers == ["org-a"]
