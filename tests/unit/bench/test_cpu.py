"""CPU shares per process group: only what ran inside the window counts."""
import os

from bench.cpu import cpu_seconds, share_of_core
from bench.report import cpu_drift


def test_share_is_cpu_seconds_per_window_second_in_percent_of_one_core():
    before = {"broker": {10: 5.0}, "postgres": {20: 1.0, 21: 2.0}}
    after = {"broker": {10: 8.0}, "postgres": {20: 1.5, 21: 3.0}}
    assert share_of_core(before, after, seconds=10) == {"broker": 30.0, "postgres": 15.0}


def test_a_process_that_appeared_or_vanished_inside_the_window_is_left_out():
    before = {"postgres": {20: 1.0, 99: 50.0}}  # 99 ended before the second sample
    after = {"postgres": {20: 2.0, 30: 40.0}}  # 30 started after the first one
    assert share_of_core(before, after, seconds=10) == {"postgres": 10.0}


def test_gone_pids_are_skipped_when_sampling():
    sampled = cpu_seconds({"me": [os.getpid()], "nobody": [2**22 + 12345]})
    assert os.getpid() in sampled["me"] and sampled["nobody"] == {}


def test_drift_lists_the_busiest_at_the_end_first():
    line = cpu_drift({"broker": 30.2, "intake": 25.0}, {"broker": 52.7, "intake": 21.9})
    assert line == "broker 30 → 53 · intake 25 → 22"
