"""Waiting for what a service does in the background: poll until it holds, or fail saying what did not."""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(probe: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
                interval: float = 0.2) -> Any:
    """Call `probe()` (a value, or an awaitable of one) every `interval` seconds until it is truthy, and return
    that value; AssertionError naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(interval)
