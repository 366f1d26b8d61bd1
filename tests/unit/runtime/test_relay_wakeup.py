"""A commit that wakes the relay while it is mid-pass is not lost (it used to cost up to 1 s)."""
from __future__ import annotations

import asyncio
import time

from warden.runtime.outbox import OutboxRelay


class _Relay(OutboxRelay):
    def __init__(self) -> None:
        super().__init__("test", pool=None, producer=None, batch_size=10, retry_initial_s=0.01, retry_max_s=0.01)
        self.passes: list[float] = []
        self.stopping = asyncio.Event()

    async def publish_batch(self) -> int:
        self.passes.append(time.perf_counter())
        if len(self.passes) == 1:
            self.wakeup.set()  # a consumer commits while this pass runs, after its SELECT
        else:
            self.stopping.set()
        return 0


async def test_wakeup_during_a_pass_triggers_the_next_pass_at_once():
    relay = _Relay()
    await asyncio.wait_for(relay.run(relay.stopping), timeout=5)
    assert len(relay.passes) == 2
    assert relay.passes[1] - relay.passes[0] < 0.5
