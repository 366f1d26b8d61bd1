"""A background job's failed round never stops it (nor its service): the next round runs, and the failure is
counted and logged by kind, where it was raised, without the exception's text."""
import asyncio
import logging

from warden.runtime import metrics
from warden.runtime.jobs import every


def count(metric, job: str) -> float:
    return metric.labels(job)._value.get()


async def test_a_failed_round_is_counted_logged_and_followed_by_the_next(caplog):
    stopping = asyncio.Event()
    rounds = []

    async def step():
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ValueError("row of account acct-secret-42 cannot be read")
        if len(rounds) == 2:
            raise ConnectionRefusedError("database away")
        stopping.set()

    failures, transient = count(metrics.JOB_FAILURES, "test_job"), count(metrics.TRANSIENT_ERRORS, "test_job")
    with caplog.at_level(logging.INFO, logger="warden.runtime.jobs"):
        await asyncio.wait_for(every(stopping, 0.01, step, "test_job"), timeout=10)
    assert rounds == [0, 1, 2]
    assert count(metrics.JOB_FAILURES, "test_job") == failures + 1
    assert count(metrics.TRANSIENT_ERRORS, "test_job") == transient + 1
    error, warning = caplog.records
    assert (error.levelname, error.error_type, warning.levelname, warning.error_type) == (
        "ERROR", "ValueError", "WARNING", "ConnectionRefusedError")
    assert error.where.startswith("test_jobs.py:") and error.where.endswith("(step)")
    assert "acct-secret-42" not in caplog.text


async def test_a_round_can_ask_for_its_next_sooner_and_a_job_can_wait_before_its_first():
    stopping = asyncio.Event()
    rounds = []

    async def step():
        rounds.append(1)
        if len(rounds) == 3:
            stopping.set()
        return 0.0  # work left: the next round at once, not after the hour

    await asyncio.wait_for(every(stopping, 3600, step, "test_job"), timeout=10)
    assert len(rounds) == 3

    later = asyncio.create_task(every(stopping := asyncio.Event(), 3600, step, "test_job", wait_first=True))
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(later, timeout=10)
    assert len(rounds) == 3  # stopped during its first wait: never ran
