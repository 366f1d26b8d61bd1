"""The wait between retries of a transient failure (database or broker away)."""
from __future__ import annotations

import asyncio


class Backoff:
    """Starts at `initial_s`, doubles after every wait, never above `max_s`; `reset` once work succeeds."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.delay_s = initial_s

    def reset(self) -> None:
        self.delay_s = self.initial_s

    async def wait(self) -> None:
        await asyncio.sleep(self.delay_s)
        self.delay_s = min(self.delay_s * 2, self.max_s)
