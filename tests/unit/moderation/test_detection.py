"""The automated checks on the platform's facts: text banks, PDQ media banks and the classifier, in one answer."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from moderation.config import MediaBank, ModerationConfig
from moderation.detection import CLASSIFIER, Checks, fingerprint, model_detection, model_facts
from moderation.classifier import Score
from moderation.media import MediaError
from warden.contract.events import ContentUpdated

BANK = Path(__file__).parents[2] / "integration" / "moderation" / "data" / "known-bad-test.csv"
KNOWN = "22cd334d3ed62ebdd902072f9fb7dedf399b033c0717001fcf560ad00c25f414"


def near(hex_hash: str, bits: int) -> str:
    """The hash with its `bits` lowest bits flipped: a near-duplicate at exactly that distance."""
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):064x}"


def facts(title: str | None = "Weekend hiking group", text: str | None = None, media: tuple[str, ...] = (),
          public: bool = True, quality: int = 100) -> ContentUpdated:
    at = datetime.now(timezone.utc)
    return ContentUpdated(content_id="chan-1", kind="channel", owner_account_id="acc-1", title=title, text=text,
                          public_in_search=public, created_at=at, updated_at=at,
                          media=[{"media_id": f"m{i}", "pdq": h, "quality": quality} for i, h in enumerate(media)])


@pytest.fixture(scope="module")
def checks() -> Checks:
    return Checks.load(ModerationConfig(media_banks=[MediaBank(file=BANK, id="known-abuse-test")]))


def test_a_drug_delivery_description_is_scored_above_the_delist_threshold_with_the_model_version(checks):
    check = checks.check(facts("Fast MDMA delivery", "Buy cocaine, delivered in 30 minutes, all of Paris"))
    assert check.score.delist and check.score.version == checks.classifier.version
    [found] = [d for d in check.detections if d.bank_id.startswith(CLASSIFIER)]
    assert found.bank_id == f"classifier:{checks.classifier.version}" and found.category == "drugs"
    assert not found.high_severity


@pytest.mark.parametrize("title, text", [
    ("City Pharmacy", "Prescription medicines, opening hours and pharmacist advice"),
    ("Hunting club Bavaria", "Our hunting club meets on Saturdays; rifle licences, safety courses and game cooking"),
])
def test_hard_negatives_are_neither_delisted_nor_queued_by_the_classifier(checks, title, text):
    check = checks.check(facts(title, text))
    assert not check.score.delist and check.score.score < checks.cfg.classifier_review_score
    assert not [d for d in check.detections if d.bank_id.startswith(CLASSIFIER)]


def test_a_near_duplicate_media_hash_matches_the_bank_within_the_distance_and_not_beyond(checks):
    assert [(d.bank_id, d.category, d.high_severity, d.how) for d in checks.check(facts(media=(near(KNOWN, 31),))).detections
            if d.bank_id.startswith("pdq:")] == [("pdq:known-abuse-test", "child_abuse", True, "pdq:31")]
    assert not [d for d in checks.check(facts(media=(near(KNOWN, 32),))).detections if d.bank_id.startswith("pdq:")]


def test_a_low_quality_media_hash_matches_nothing(checks):
    assert not [d for d in checks.check(facts(media=(KNOWN,), quality=10)).detections if d.bank_id.startswith("pdq:")]


def test_content_not_public_in_search_is_not_checked(checks):
    check = checks.check(facts("Fast MDMA delivery", "Buy cocaine", media=(KNOWN,), public=False))
    assert check.detections == [] and check.score is None


def test_below_the_review_score_the_classifier_adds_no_match():
    cfg = ModerationConfig(classifier_review_score=0.5)
    low = Score(0.49, "drugs", "v1", ("x",), False)
    high = Score(0.5, "forged_documents", "v1", ("x",), False)
    assert model_detection(low, cfg) is None
    assert model_detection(high, cfg).category == "illegal_goods" and model_detection(high, cfg).weight == 0.5


def test_the_statement_facts_name_the_model_version_score_and_threshold():
    text = model_facts(Score(0.97, "drugs", "charlr-abc", ("cocaine", "delivery"), True), 0.9017)
    assert "model charlr-abc" in text and "0.970" in text and "0.902" in text and "cocaine" in text


def test_the_fingerprint_changes_with_a_bank_file_and_with_the_model(tmp_path, checks):
    bank = tmp_path / "bank.csv"
    bank.write_text(BANK.read_text())
    cfg = ModerationConfig(media_banks=[MediaBank(file=bank)])
    before = fingerprint(cfg, checks.classifier)
    assert fingerprint(cfg, checks.classifier) == before
    assert fingerprint(cfg, None) != before  # the classifier turned off (or another model version)
    bank.write_text(BANK.read_text() + f"pdq,{near(KNOWN, 100)},test-0003\n")
    assert fingerprint(cfg, checks.classifier) != before


def test_a_malformed_bank_or_a_missing_model_stops_loading_with_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("signal_type,signal_value\npdq,not-a-hash\n")
    with pytest.raises(MediaError, match="bad.csv"):
        Checks.load(ModerationConfig(media_banks=[MediaBank(file=bad)], classifier=False))
    with pytest.raises(Exception, match="no model metadata"):
        Checks.load(ModerationConfig(model_dir=tmp_path))


def test_above_the_review_score_with_benign_likeliest_the_match_takes_the_likeliest_violation_class(checks):
    check = checks.check(facts("Party supplies, fast delivery"))
    assert check.score.label == "benign" and check.score.score >= checks.cfg.classifier_review_score
    [found] = [d for d in check.detections if d.bank_id.startswith(CLASSIFIER)]
    assert found.category == "drugs"
    assert model_detection(Score(0.6, "benign", "v1", (), False), ModerationConfig(), "weapons").category == "weapons"
