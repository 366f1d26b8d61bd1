"""A record the broker refuses for good never blocks the outbox: it is set aside with its error,
counted, and everything behind it flows; the backlog gauge counts every row waiting."""
from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from tests.integration.runtime.test_outbox_handover import Setup

TOO_LARGE = b"x" * (3 * 1024 * 1024)  # past the producer's max_request_size (warden/runtime/kafka.py)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def set_aside(s: Setup) -> list[tuple[bytes, str]]:
    async with s.pool.acquire() as conn:
        rows = await conn.fetch("SELECT value, error FROM outbox_refused ORDER BY id")
    return [(r["value"], r["error"]) for r in rows]


async def test_a_scan_sets_a_refused_row_aside_and_sends_the_rest(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        before = counted("warden_outbox_refused_total", topic="legal.requests.status")
        await s.commit(b"before", TOO_LARGE, b"after")

        assert await s.relay.publish_batch() == 3

        assert await s.published() == [b"before", b"after"]
        assert await s.waiting() == 0
        [(value, error)] = await set_aside(s)
        assert value == TOO_LARGE and "MessageSizeTooLargeError" in error
        assert counted("warden_outbox_refused_total", topic="legal.requests.status") == before + 1


async def test_a_handed_over_refused_row_is_set_aside_too(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        await s.relay.publish_batch()  # the start's scan
        s.relay.hand_over(*await s.commit(b"one", TOO_LARGE, b"two"))

        assert await s.relay.publish_handed() == 3

        assert await s.published() == [b"one", b"two"]
        assert await s.waiting() == 0
        assert [value for value, _ in await set_aside(s)] == [TOO_LARGE]


class AlwaysTimingOut:
    async def send(self, *args, **kwargs):
        raise KafkaTimeoutError()


async def test_the_backlog_gauge_counts_rows_a_failing_relay_cannot_send(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        await s.commit(b"stuck 1", b"stuck 2", b"stuck 3")
        s.relay.producer = AlwaysTimingOut()
        stopping = asyncio.Event()
        task = asyncio.create_task(s.relay.run(stopping))
        await asyncio.sleep(0.5)
        stopping.set()
        s.relay.wakeup.set()
        await asyncio.wait_for(task, 10)

        assert await s.waiting() == 3  # a timeout is not a refusal: the rows stay for the next try
        assert counted("warden_outbox_backlog") == 3
        assert await set_aside(s) == []
