"""Statements of reasons (DSA Art. 17) and appeal admissibility (Art. 20)."""
from datetime import datetime, timedelta, timezone

import pytest

from moderation.config import ModerationConfig
from moderation.statements import Facts, add_months, appeal_refusal, automation, statement

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


@pytest.mark.parametrize("action, source, facts, visibility, source_type, content_type", [
    ("delist", "proactive", Facts(AT, True, True), ["DECISION_VISIBILITY_CONTENT_DEMOTED"], "SOURCE_VOLUNTARY",
     ["CONTENT_TYPE_TEXT", "CONTENT_TYPE_IMAGE"]),
    ("keep", "notice", Facts(AT, False, True), [], "SOURCE_ARTICLE_16", ["CONTENT_TYPE_TEXT"]),
    ("uphold", "trusted_flagger", Facts(), [], "SOURCE_TRUSTED_FLAGGER", ["CONTENT_TYPE_OTHER"]),
])
def test_every_statement_carries_the_transparency_database_fields(action, source, facts, visibility, source_type,
                                                                   content_type):
    sor = statement(content_id="c/1", action=action, reason="drugs", facts="f", automated_detection=False,
                    human=True, decided_at=AT, cfg=ModerationConfig(), source=source, content=facts)
    assert sor.decision_visibility == visibility and sor.source_type == source_type
    assert sor.content_type == content_type and sor.ground_explanation
    assert sor.content_date == (AT.date() if facts.described else None)
    assert sor.puid == sor.decision_id  # an identifier of the statement, never the content's or a person's


UNTIL = AT + timedelta(days=180)


@pytest.mark.parametrize("found, known, owner, delisted, submitted, code", [
    (True, True, True, True, AT + timedelta(days=1), None),
    (False, True, True, True, AT, "no_decision"),
    (True, False, False, True, AT, "no_owner"),        # the platform names no owner: no one may appeal
    (True, True, False, True, AT, "not_owner"),
    (True, True, True, True, UNTIL + timedelta(seconds=1), "window_closed"),
    (True, True, True, False, AT, "not_delisted"),
])
def test_appeal_refusal(found, known, owner, delisted, submitted, code):
    refusal = appeal_refusal(decision_found=found, owner_known=known, owner_matches=owner, delisted=delisted,
                             submitted_at=submitted, appealable_until=UNTIL if found else None)
    assert (refusal.split(":")[0] if refusal else None) == code


def test_tokens_from_json_environment(monkeypatch):
    monkeypatch.setenv("WARDEN_MODERATION_TOKENS", '{"t1": {"name": "maria", "roles": ["moderator"]}}')
    monkeypatch.setenv("WARDEN_MODERATION_TRUSTED_FLAGGERS", '["org-a"]')
    cfg = ModerationConfig()
    assert cfg.tokens["t1"].name == "maria" and cfg.trusted_flaggers == ["org-a"]
