"""The console's score history replays the service's window rules in one pass: the same scores as replaying the
whole window after each report, a suspended reporter's report counting for nothing, and a brigade's item shown
without rendering every report."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import scoring
from moderation.config import ModerationConfig
from moderation.console.routes import REPORTS_SHOWN_PER_REASON, _by_reason, score_history

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
CFG = ModerationConfig(window_hours=2)


def replayed(reports, cleared_at, cfg):
    """The rules as the service states them, the whole window judged again after each report."""
    window: scoring.Reports = {}
    scores = []
    for r in sorted(reports, key=lambda r: r["reported_at"]):
        at = r["reported_at"]
        start = scoring.window_start(at, cleared_at if cleared_at and cleared_at <= at else None, cfg)
        window = {k: v for k, v in window.items() if v[1] >= start.timestamp()}
        if not r["suspended"]:
            window = scoring.add_report(window, r["reporter_id"], r["contribution"], at, start)
        scores.append(scoring.window_score(window, start))
    return scores


report = st.fixed_dictionaries({
    "reporter_id": st.sampled_from(["a", "b", "c", "d"]),
    "contribution": st.sampled_from([0.0, 0.1, 0.7, 1.0, 2.5, 1.2345]),
    "reported_at": st.integers(0, 6 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
    "reason": st.sampled_from(["drugs", "scam"]),
    "suspended": st.booleans(),
})


@settings(max_examples=300, deadline=None)
@given(reports=st.lists(report, max_size=30), cleared=st.none() | st.integers(0, 6 * 3600))
def test_one_pass_gives_the_scores_of_replaying_the_window_after_each_report(reports, cleared):
    cleared_at = None if cleared is None else T0 + timedelta(seconds=cleared)
    assert [p["score"] for p in score_history(reports, cleared_at, CFG)] == replayed(reports, cleared_at, CFG)


def test_a_suspended_reporters_report_counts_for_nothing_and_holds_no_place_in_the_window():
    rows = [{"reporter_id": "a", "reason": "drugs", "contribution": 0.0, "reported_at": T0, "suspended": True},
            {"reporter_id": "a", "reason": "drugs", "contribution": 3.0, "reported_at": T0 + timedelta(minutes=5),
             "suspended": False}]
    history = score_history(rows, None, CFG)
    assert [(p["contribution"], p["score"]) for p in history] == [(0.0, 0.0), (3.0, 3.0)]


def test_a_brigaded_item_shows_its_latest_reports_and_weighs_them_all():
    rows = [{"reporter_id": f"fresh-{n}", "reason": "drugs", "contribution": 0.5,
             "reported_at": T0 + timedelta(seconds=n), "suspended": False} for n in range(20_000)]
    [group] = _by_reason(rows)
    assert group["count"] == 20_000 and group["contribution"] == 10_000.0
    assert [r["reporter_id"] for r in group["reports"]] == [f"fresh-{n}" for n in range(20_000 - REPORTS_SHOWN_PER_REASON,
                                                                                        20_000)]
    history = score_history(rows, None, ModerationConfig())
    assert len(history) == 20_000 and history[-1]["score"] == 10_000.0
