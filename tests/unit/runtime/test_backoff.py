"""Retries wait initial, doubled each time up to the maximum, and start over once work succeeds."""
from __future__ import annotations

import asyncio

from warden.runtime.backoff import Backoff


async def test_the_wait_doubles_up_to_the_maximum_and_reset_starts_over(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    backoff = Backoff(0.2, 1.0)
    for _ in range(5):
        await backoff.wait()
    backoff.reset()
    await backoff.wait()

    assert slept == [0.2, 0.4, 0.8, 1.0, 1.0, 0.2]
