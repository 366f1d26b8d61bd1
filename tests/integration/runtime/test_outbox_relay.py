"""The relay publishes outbox rows in id order and removes them only once the broker has them."""
from __future__ import annotations

import uuid

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from tests.support.kafka import read_topic
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.kafka import producer as new_producer
from warden.runtime.outbox import OutboxRelay, OutboxRow, write_rows

TOPIC = "legal.requests.status"  # any topic of the contract; the test finds its rows by key


async def relay_over(database_url: str, schema: str, bootstrap: str, rows: list[OutboxRow]):
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    async with pool.acquire() as conn, conn.transaction():
        await write_rows(conn, rows)
    producer = new_producer(bootstrap)
    await producer.start()
    return pool, producer, OutboxRelay("test", pool, producer, batch_size=100, retry_initial_s=0.1, retry_max_s=0.1)


async def waiting(pool) -> list[bytes]:
    async with pool.acquire() as conn:
        return [r["value"] for r in await conn.fetch("SELECT value FROM outbox ORDER BY id")]


def published_count(topic: str) -> float:
    return REGISTRY.get_sample_value("warden_outbox_published_total", {"topic": topic}) or 0.0


async def test_rows_go_out_in_id_order_and_leave_the_outbox(bootstrap, database_url):
    key = uuid.uuid4().hex.encode()
    values = [f"event {i}".encode() for i in range(5)]
    pool, producer, relay = await relay_over(database_url, "rt_relay", bootstrap,
                                             [OutboxRow(TOPIC, key, v, [("n", bytes([i]))]) for i, v in enumerate(values)])
    counted = published_count(TOPIC)
    try:
        assert await relay.publish_batch() == 5
        assert await waiting(pool) == []
        assert published_count(TOPIC) == counted + 5  # each row counted once the broker has it
        published = [r for r in await read_topic(bootstrap, TOPIC) if r.key == key]
        assert [r.value for r in published] == values
        assert [list(r.headers) for r in published] == [[("n", bytes([i]))] for i in range(5)]
    finally:
        await producer.stop()
        await pool.close()


class TimingOutOnSecond:
    """The producer, except that its second send times out (a transient failure, not a refusal)."""

    def __init__(self, producer):
        self.producer, self.sends = producer, 0

    async def send(self, *args, **kwargs):
        self.sends += 1
        if self.sends == 2:
            raise KafkaTimeoutError()
        return await self.producer.send(*args, **kwargs)


async def test_a_send_that_fails_leaves_every_row_of_the_pass_in_the_outbox(bootstrap, database_url):
    key = uuid.uuid4().hex.encode()
    values = [b"sent before the failure", b"the one that fails", b"after it"]
    pool, producer, relay = await relay_over(database_url, "rt_relay_fail", bootstrap,
                                             [OutboxRow(TOPIC, key, v) for v in values])
    relay.producer = TimingOutOnSecond(producer)
    try:
        with pytest.raises(KafkaTimeoutError):
            await relay.publish_batch()
        assert await waiting(pool) == values  # nothing lost: the next pass sends them (the first one again)
    finally:
        await producer.stop()
        await pool.close()
