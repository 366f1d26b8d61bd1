"""The relay publishes outbox rows in id order and removes them only once the broker has them."""
from __future__ import annotations

import uuid

import pytest
from aiokafka.errors import MessageSizeTooLargeError

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


async def test_rows_go_out_in_id_order_and_leave_the_outbox(bootstrap, database_url):
    key = uuid.uuid4().hex.encode()
    values = [f"event {i}".encode() for i in range(5)]
    pool, producer, relay = await relay_over(database_url, "rt_relay", bootstrap,
                                             [OutboxRow(TOPIC, key, v, [("n", bytes([i]))]) for i, v in enumerate(values)])
    try:
        assert await relay.publish_batch() == 5
        assert await waiting(pool) == []
        published = [r for r in await read_topic(bootstrap, TOPIC) if r.key == key]
        assert [r.value for r in published] == values
        assert [list(r.headers) for r in published] == [[("n", bytes([i]))] for i in range(5)]
    finally:
        await producer.stop()
        await pool.close()


async def test_a_send_the_broker_refuses_leaves_every_row_of_the_pass_in_the_outbox(bootstrap, database_url):
    key = uuid.uuid4().hex.encode()
    too_large = b"x" * (3 * 1024 * 1024)  # over the producer's 2 MiB max_request_size
    values = [b"sent before the failure", too_large, b"after it"]
    pool, producer, relay = await relay_over(database_url, "rt_relay_fail", bootstrap,
                                             [OutboxRow(TOPIC, key, v) for v in values])
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await relay.publish_batch()
        assert await waiting(pool) == values  # nothing lost: the next pass sends them (the first one again)
    finally:
        await producer.stop()
        await pool.close()
