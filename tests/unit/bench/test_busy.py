"""The bench's stand-in for other work on the machine: busy loops taking a set share of the cores."""
import os

import psutil
import pytest

from bench.busy import Busy, shares


def test_cores_are_split_evenly_over_the_fewest_loops_of_at_most_one_core():
    assert shares(0) == []
    assert shares(0.5) == [0.5]
    assert shares(1) == [1.0]
    assert shares(1.2) == [0.6, 0.6]
    assert shares(2.7) == [0.9, 0.9, 0.9]
    with pytest.raises(ValueError):
        shares(-1)


def test_the_loops_spin_while_open_and_are_gone_once_closed():
    with Busy(1.2) as busy:
        children = [psutil.Process(p.pid) for p in busy.processes]
        assert len(children) == 2
        assert all(c.is_running() and c.ppid() == os.getpid() for c in children)
        assert all(c.cmdline()[-3:] == ["-m", "bench.busy", "0.6"] for c in children)
    assert all(p.poll() is not None for p in busy.processes)
