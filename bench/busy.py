"""Other work on the machine, made repeatable: `python -m bench.busy SHARE` spins SHARE of one core.

A shared machine gives a bench less CPU than it has, by an amount that moves from minute to minute.
`Busy(cores)` takes a set amount instead, for as long as it is open: one process per started core,
each spinning its share of every 10 ms and sleeping the rest, at the niceness of the process that
opens it. bench.sidebyside runs both checkouts under the same `--busy` load.
"""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

PERIOD_S = 0.01
ROOT = Path(__file__).resolve().parent.parent


def shares(cores: float) -> list[float]:
    """`cores` split evenly over the fewest processes that each take at most one core."""
    if cores < 0:
        raise ValueError(f"cannot take {cores} cores")
    count = math.ceil(round(cores, 6))
    return [round(cores / count, 6)] * count if count else []


class Busy:
    """Processes spinning `cores` of CPU between them while the context is open."""

    def __init__(self, cores: float):
        self.shares = shares(cores)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:
        self.processes = [subprocess.Popen([sys.executable, "-m", "bench.busy", str(share)], cwd=ROOT)
                          for share in self.shares]
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait()


def spin(share: float) -> None:
    while True:
        until = time.perf_counter() + PERIOD_S * share
        while time.perf_counter() < until:
            pass
        time.sleep(PERIOD_S * (1 - share))


if __name__ == "__main__":
    share = float(sys.argv[1])
    if not 0 < share <= 1:
        sys.exit(f"a share of one core is in (0, 1], not {share}")
    try:
        spin(share)
    except KeyboardInterrupt:
        pass
