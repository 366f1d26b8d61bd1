"""Scoring, dedupe, trust, misuse and thresholds: pure rules, table-driven."""
from datetime import datetime, timedelta, timezone

import pytest

from moderation import scoring
from moderation.config import ModerationConfig
from moderation.scoring import Action, MisuseStep, QueueRank

CFG = ModerationConfig(review_threshold=5, delist_threshold=12, trusted_flagger_weight=2.5)
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
START = NOW - timedelta(hours=24)


@pytest.mark.parametrize("trust, trusted, reason, expected", [
    (1.0, False, "drugs", 4.0),
    (0.5, False, "drugs", 2.0),
    (1.0, True, "drugs", 10.0),           # trusted flaggers weigh at least the flagger weight
    (2.0, False, "child_abuse", 20.0),
    (1.0, False, "no-such-reason", 1.0),  # unknown reasons count as "other"
])
def test_contribution_is_weight_times_severity(trust, trusted, reason, expected):
    weight = scoring.reporter_weight(trust, trusted, CFG)
    assert scoring.contribution(reason, weight, CFG) == expected


def test_same_reporter_again_adds_nothing_and_distinct_reporters_add_up():
    reports = {}
    for reporter in ["a", "a", "b", "a", "c"]:
        reports = scoring.add_report(reports, reporter, 4.0, NOW, START)
    assert scoring.window_score(reports, START) == 12.0
    assert sorted(reports) == ["a", "b", "c"]


def test_reports_leave_the_window_and_the_reporter_counts_again_after():
    old = scoring.add_report({}, "a", 4.0, NOW - timedelta(hours=30), NOW - timedelta(hours=54))
    assert scoring.window_score(old, START) == 0
    again = scoring.add_report(old, "a", 3.0, NOW, START)
    assert again == {"a": [3.0, NOW.timestamp(), 1.0]}


def test_window_starts_at_the_last_human_decision_when_later():
    cleared = NOW - timedelta(hours=2)
    assert scoring.window_start(NOW, cleared, CFG) == cleared
    assert scoring.window_start(NOW, NOW - timedelta(days=3), CFG) == START
    assert scoring.window_start(NOW, None, CFG) == START


@pytest.mark.parametrize("score, high, expected", [
    (0, False, Action.record), (4.99, False, Action.record), (5, False, Action.review),
    (11.9, False, Action.review), (12, False, Action.delist), (0, True, Action.delist),
])
def test_thresholds(score, high, expected):
    assert scoring.decide(score, high, CFG) is expected


@pytest.mark.parametrize("trust, upheld, expected", [
    (1.0, True, 1.2), (1.0, False, 0.7), (1.95, True, 2.0), (0.2, False, 0.1), (0.1, False, 0.1),
])
def test_trust_rises_on_uphold_falls_on_reject_within_bounds(trust, upheld, expected):
    assert scoring.adjust_trust(trust, upheld, CFG) == expected


@pytest.mark.parametrize("unfounded, total, warned, expected", [
    (0, 0, False, MisuseStep.none),
    (4, 4, False, MisuseStep.none),        # below the count threshold
    (5, 10, False, MisuseStep.none),       # below the share threshold (0.7)
    (5, 7, False, MisuseStep.warn),
    (7, 8, True, MisuseStep.suspend),      # already warned: suspend
])
def test_misuse_needs_count_and_share_and_warns_before_suspending(unfounded, total, warned, expected):
    assert scoring.misuse_step(unfounded, total, warned, CFG) is expected


def test_queue_priority_urgent_then_trusted_then_score():
    ranks = [QueueRank(False, False, 900), QueueRank(False, True, 5), QueueRank(True, False, 0)]
    ordered = sorted(ranks, key=QueueRank.priority, reverse=True)
    assert ordered == [ranks[2], ranks[1], ranks[0]]


LOOSE = ModerationConfig(review_threshold=5, delist_threshold=12, min_established_score=6, burst_min_reporters=3,
                         burst_minutes=60)


def window(*reporters):
    """(who, contribution, minutes ago, established) -> a window."""
    return {who: [value, (NOW - timedelta(minutes=ago)).timestamp(), 1.0 if est else 0.0]
            for who, value, ago, est in reporters}


@pytest.mark.parametrize("reports, high, action, coordinated", [
    # established reporters past the threshold delist
    (window(("a", 5, 300, True), ("b", 5, 200, True), ("c", 4, 100, True)), False, Action.delist, False),
    # the same score from fresh accounts, spread out: queued, not delisted (too little established trust)
    (window(("a", 5, 300, False), ("b", 5, 200, False), ("c", 4, 100, False)), False, Action.review, False),
    # a burst of unproven reporters is coordinated: queued even with established trust past the minimum
    (window(("a", 8, 300, True), ("x", 2, 10, False), ("y", 2, 5, False), ("z", 1, 1, False)), False,
     Action.review, True),
    # a small burst, below the review threshold, is still flagged and queued
    (window(("x", 1, 10, False), ("y", 1, 5, False), ("z", 1, 1, False)), False, Action.review, True),
    # a high-severity match on the content's facts delists whoever reported it
    (window((scoring.bank("known"), 10, 0, True)), True, Action.delist, False),
    (window(("x", 1, 10, False)), False, Action.record, False),
])
def test_judge_delists_on_volume_only_with_established_trust_and_no_burst(reports, high, action, coordinated):
    verdict = scoring.judge(reports, START, high, LOOSE)
    assert (verdict.action, verdict.coordinated) == (action, coordinated)


def test_bank_matches_never_count_as_a_burst():
    assert not scoring.coordinated(window((scoring.bank("a"), 4, 1, False), (scoring.bank("b"), 4, 1, False),
                                          ("x", 1, 1, False)), LOOSE)


def test_reporters_whose_ids_spell_a_bank_are_reporters_in_a_burst_and_name_no_bank():
    spelled = window(("bank:a", 4, 1, False), ("bank:b", 4, 1, False), ("x", 1, 1, False))
    assert scoring.coordinated(spelled, LOOSE)
    held = scoring.Window(spelled, START, LOOSE)
    assert held.banks == [] and held.verdict(False).coordinated
