"""The inbox is claimed before handling: a redelivered or concurrently handled event is handled once."""
from __future__ import annotations

import asyncio

from aiokafka.structs import ConsumerRecord

from warden.runtime.batch import Decoded
from warden.runtime.inbox import claim_in_inbox
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate


def undecodable(offset: int) -> Decoded:
    """An event whose inbox key is its Kafka coordinates (no envelope)."""
    return Decoded(ConsumerRecord("legal.requests.submitted", 0, offset, 0, 0, None, b"x", None, 1, 0, ()))


async def test_claims_are_taken_once_across_copies_rollbacks_and_concurrent_batches(database_url):
    await migrate(database_url, "rt_claim", [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, "rt_claim", 3)
    a, b, c = undecodable(1), undecodable(2), undecodable(3)
    try:
        async with pool.acquire() as conn, conn.transaction():
            assert await claim_in_inbox(conn, [a, a, b]) == {a.inbox_key, b.inbox_key}  # a copy in the batch: once

        async with pool.acquire() as conn:
            rolled_back = conn.transaction()
            await rolled_back.start()
            assert await claim_in_inbox(conn, [c]) == {c.inbox_key}
            await rolled_back.rollback()  # the batch failed: its claim goes with it

        async with pool.acquire() as first, pool.acquire() as second:
            holder = first.transaction()
            await holder.start()
            assert await claim_in_inbox(first, [c]) == {c.inbox_key}
            waiting = second.transaction()
            await waiting.start()
            claim = asyncio.create_task(claim_in_inbox(second, [b, c]))
            await asyncio.sleep(0.3)
            assert not claim.done()  # waits for the batch that holds c
            await holder.commit()
            assert await asyncio.wait_for(claim, 5) == set()  # b was handled before, c by the other batch
            await waiting.rollback()
    finally:
        await pool.close()
