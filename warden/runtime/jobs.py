"""Background jobs: a step run in rounds, every interval, until the service stops.

A failed round never stops the service: the consumers, the relay and the API go on, and the
job tries again at its next round. A transient failure (the database or the broker away) is
counted in `warden_transient_errors_total{component=<job>}` and logged as a warning; any other
failure (a bug, a row the job cannot handle) is logged as an error with where it was raised,
counted in `warden_job_failures_total{background_job}` and alerted on (WardenJobFailing), so that it is
fixed rather than retried unseen. Each round is its own transaction(s): a failed one leaves
nothing half done.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from warden.runtime import metrics
from warden.runtime.database import is_transient
from warden.runtime.logs import raised_at

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float | None]]


async def every(stopping: asyncio.Event, interval_s: float, step: Step, name: str, *,
                wait_first: bool = False) -> None:
    """Run `step` now (after one interval with `wait_first`) and then every `interval_s` until `stopping`
    is set. A step may return the pause before its next round instead (a job with work left goes on
    sooner); after a failed round the pause is `interval_s`."""
    if wait_first and await _stopped_within(stopping, interval_s):
        return
    while not stopping.is_set():
        pause = interval_s
        try:
            chosen = await step()
            if chosen is not None:
                pause = chosen
        except Exception as exc:
            if is_transient(exc):
                metrics.TRANSIENT_ERRORS.labels(name).inc()
                log.warning("job round failed on a transient error, retried next round",
                            extra={"job": name, "error_type": type(exc).__name__})
            else:
                metrics.JOB_FAILURES.labels(name).inc()
                log.error("job round failed, retried next round",
                          extra={"job": name, "error_type": type(exc).__name__, "where": raised_at(exc)})
        if await _stopped_within(stopping, pause):
            return


async def _stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False
