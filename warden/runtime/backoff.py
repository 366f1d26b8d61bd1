"""The wait between retries of a transient failure (database or broker away)."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Callable


class Backoff:
    """Starts at `initial_s`, doubles after every wait, never above `max_s`; `reset` once work succeeds.

    Each wait is jittered, a random time between half the delay and the delay, so that replicas
    that lost the database or the broker together do not all come back in the same instant.
    """

    def __init__(self, initial_s: float, max_s: float, rng: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.delay_s = initial_s
        self._rng = rng

    def reset(self) -> None:
        self.delay_s = self.initial_s

    def next_wait_s(self) -> float:
        """The wait before the next try (jittered), and the delay doubled for the one after."""
        wait = self.delay_s * (0.5 + self._rng() / 2)
        self.delay_s = min(self.delay_s * 2, self.max_s)
        return wait

    async def wait(self) -> None:
        await asyncio.sleep(self.next_wait_s())
