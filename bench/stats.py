"""Small, pure helpers for the figures: percentiles and rates."""
from __future__ import annotations

import math
import random
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by the nearest-rank method; None for no values.

    Nearest rank never invents a value that was not measured: p99 of 100 samples is
    the 99th smallest, so a single slow outlier shows at p99 of fewer than 100 samples.
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)
    return {"p50_ms": ms(percentile(seconds, 50)), "p95_ms": ms(percentile(seconds, 95)),
            "p99_ms": ms(percentile(seconds, 99)), "max_ms": ms(max(seconds) if seconds else None),
            "samples": len(seconds)}


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def p99_by_window(samples: Sequence[tuple[float, float]], window_s: float) -> list[float | None]:
    """p99 in ms of each `window_s` slice of a run, by when each sample was scheduled.

    `samples`: (scheduled moment in seconds from the run's start, duration in seconds).
    A target met over the first windows and missed over the last shows something that
    grows as the run goes on, which one figure over the whole run hides.
    """
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    windows: list[list[float]] = []
    for at, duration in samples:
        index = max(int(at // window_s), 0)
        while len(windows) <= index:
            windows.append([])
        windows[index].append(duration)
    return [None if not w else round(percentile(w, 99) * 1000, 2) for w in windows]


def ratio_interval(pairs: Sequence[tuple[float, float]], confidence: float = 0.9, draws: int = 4000,
                   seed: int = 0) -> tuple[float, float] | None:
    """A bootstrap interval of mean(after) / mean(before) over (before, after) pairs: the pairs drawn again
    with replacement `draws` times, the ratio of the means of each draw, its central `confidence` share.

    Pairs, not runs, are drawn, since the two runs of a pair shared the machine's state. With four to six
    pairs the interval is rough, but it says whether a series can tell a 10 % difference at all. Seeded:
    the same pairs give the same interval. None for fewer than two pairs."""
    if len(pairs) < 2:
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(draws):
        drawn = rng.choices(pairs, k=len(pairs))
        before = sum(b for b, _ in drawn)
        ratios.append(sum(a for _, a in drawn) / before if before else math.inf)
    tail = (1 - confidence) / 2 * 100
    low, high = percentile(ratios, tail), percentile(ratios, 100 - tail)
    return round(low, 3), round(high, 3)
