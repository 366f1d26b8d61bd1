"""Backoff doubles up to its cap and jitters each wait between half the delay and the delay."""
from __future__ import annotations

import random

from warden.runtime.backoff import Backoff


def test_waits_double_up_to_the_cap_within_their_jitter():
    backoff = Backoff(0.2, 5.0, rng=random.Random(7).random)
    waits = [backoff.next_wait_s() for _ in range(8)]
    delays = [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert all(d / 2 <= w <= d for w, d in zip(waits, delays)), list(zip(waits, delays))
    backoff.reset()
    assert 0.1 <= backoff.next_wait_s() <= 0.2


def test_replicas_that_fail_together_do_not_retry_together():
    replicas = [Backoff(1.0, 30.0, rng=random.Random(seed).random) for seed in range(10)]
    first_waits = {round(b.next_wait_s(), 3) for b in replicas}
    assert len(first_waits) == 10
