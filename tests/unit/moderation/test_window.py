"""The incremental window (scoring.Window) leaves what add_report leaves and judges as judge does on it, report
after report, without walking the window for each report (a brigade of fresh accounts on one item)."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import scoring
from moderation.config import ModerationConfig

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
START = NOW - timedelta(hours=24)
CFG = ModerationConfig(review_threshold=5, delist_threshold=12, burst_min_reporters=3, burst_minutes=10,
                       min_established_score=6)

# "bank:x" is a reporter's id like any other: only scoring.bank keys are bank matches
who = st.sampled_from(["a", "b", "c", "d", "e", "bank:x", scoring.bank("x"), scoring.bank("y")])
moment = st.one_of(st.integers(-30 * 3600, 0).map(lambda s: NOW + timedelta(seconds=s)),  # some before START
                   st.integers(-600, 0).map(lambda s: NOW + timedelta(seconds=s)))         # close together: bursts
value = st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0, 0.1, 0.7])
entry = st.tuples(who, value, moment, st.booleans())


@settings(max_examples=400, deadline=None)
@given(initial=st.lists(entry, max_size=8), reports=st.lists(entry, max_size=25), high=st.booleans())
def test_folding_report_by_report_gives_what_judging_the_whole_window_gives(initial, reports, high):
    start = START.timestamp()
    held = {w: [v, at.timestamp(), 1.0 if est else 0.0] for w, v, at, est in initial if at.timestamp() >= start}
    window, reference = scoring.Window(held, START, CFG), dict(held)
    for reporter, v, at, established in reports:
        assert window.add(reporter, v, at, established) == (reporter in reference)
        reference = scoring.add_report(reference, reporter, v, at, START, established)
        assert window.verdict(high) == scoring.judge(reference, START, high, CFG)
        assert window.quiet() == (window.verdict(False).action is scoring.Action.record and not window.banks)
        assert window.entries == {w: e for w, e in reference.items() if e[1] >= start}
        assert window.banks == sorted(w[1] for w, e in reference.items() if type(w) is tuple and e[1] >= start)


class NoWalks(dict):
    """A window's entries that refuse to be walked: folding a report must not go over the whole window."""

    def items(self):
        raise AssertionError("the window was walked")

    values = keys = __iter__ = items


def test_folding_a_brigade_into_one_item_never_walks_its_window():
    held = {f"old{i}": [0.5, (NOW - timedelta(seconds=i)).timestamp(), 0.0] for i in range(5000)}
    window = scoring.Window(held, START, CFG)
    window.entries = NoWalks(window.entries)
    for n in range(1000):
        window.add(f"new{n}", 0.5, NOW, False)
        verdict = window.verdict(False)
    assert verdict.coordinated and verdict.score == round(0.5 * 6000, 4) and len(window.entries) == 6000
