"""The bench's percentile helper: nearest rank, never a value that was not measured."""
import pytest

from bench.report import markdown
from bench.stats import percentile, ratio, summary_ms


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
