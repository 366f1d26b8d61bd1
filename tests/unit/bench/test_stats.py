"""The bench's percentile helper: nearest rank, never a value that was not measured."""
import pytest

from bench.report import markdown
from bench.stats import p99_by_window, percentile, ratio, ratio_interval, summary_ms


def test_nearest_rank_percentiles():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # order of samples does not matter
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_one_slow_sample_in_fifty_is_the_p99():
    assert summary_ms([0.010] * 49 + [0.500])["p99_ms"] == 500.0


def test_ratio_and_markdown_verdicts():
    assert ratio(50, 100) == 0.5 and ratio(None, 3) is None
    table = markdown({"machine": {}, "options": {}, "echo": {"events_per_s": 1000.0},
                      "moderation": {"reports_per_s": 400.0, "ratio_to_echo": 0.4}})
    assert "| moderation / echo | >= 0.5 | 0.4 ✗ |" in table


def test_p99_by_window_slices_a_run_by_schedule():
    # 0-10 s fast, 10-20 s slow, 20-30 s nothing scheduled, then one sample
    fast = [(i / 10, 0.100) for i in range(100)]
    slow = [(10 + i / 10, 0.300) for i in range(99)] + [(19.9, 0.900)]
    assert p99_by_window(fast + slow + [(31.0, 0.050)], 10) == [100.0, 300.0, None, 50.0]
    assert p99_by_window([], 10) == []
    with pytest.raises(ValueError):
        p99_by_window(fast, 0)


def test_the_report_shows_a_legal_step_window_by_window_and_without_the_reader():
    step = {"target_per_s": 200.0, "held_per_s": 199.0, "sent": 12000, "issued": 12000, "p50_ms": 150.0,
            "p95_ms": 200.0, "p99_ms": 260.0, "p99_ms_by_window": [120.0, 180.0, None, 310.0],
            "latency_window_s": 10.0, "to_issued_record": {"p50_ms": 120.0, "p99_ms": 230.0}}
    table = markdown({"machine": {}, "options": {}, "legal": {"steps": [step]}})
    assert "| legal @ 200/s: p99 ms of each 10 s, by schedule |  | 120 · 180 · – · 310 |" in table
    assert "| legal @ 200/s: p99 ms | < 250 | 260 ✗ |" in table
    assert "| legal @ 200/s: to the package's record, no reader's wait: p50 / p99 ms |  | 120 / 230 |" in table


def test_the_ratio_interval_holds_the_ratio_of_means_and_narrows_with_steady_pairs():
    noisy = [(300, 450), (250, 260), (400, 360), (280, 420)]
    low, high = ratio_interval(noisy)
    assert low < (450 + 260 + 360 + 420) / (300 + 250 + 400 + 280) < high
    assert low < 1.1 < high  # four noisy pairs cannot tell 10 % apart
    steady = [(300, 330), (310, 341), (290, 319), (305, 335.5)] * 3
    s_low, s_high = ratio_interval(steady)
    assert 1.09 <= s_low <= 1.1 <= s_high <= 1.11
    assert ratio_interval(noisy) == (low, high)  # seeded: the same pairs, the same interval
    assert ratio_interval([(300, 330)]) is None
