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


def copy_of(event_id: str, offset: int, *, replay: bool) -> Decoded:
    """A copy of one CloudEvent at some offset, plain or as `warden dlq replay` publishes it."""
    from datetime import datetime, timezone

    from warden.contract.envelope import Envelope
    from warden.runtime.dead_letters import replay_headers

    headers = replay_headers([], dlq_topic="legal.requests.submitted.dlq", dlq_partition=0, dlq_offset=offset,
                             by="ops", at="2026-12-02T00:00:00+00:00") if replay else []
    record = ConsumerRecord("legal.requests.submitted", 0, offset, 0, 0, None, b"{}", None, 2, 0, headers)
    return Decoded(record, Envelope(event_id, "/gateway", "t.v1", datetime.now(timezone.utc), {}))


async def test_a_replay_takes_back_a_dead_lettered_claim_once_and_never_a_handled_one(database_url):
    from warden.runtime.dead_letters import mark_dead_lettered

    await migrate(database_url, "rt_replay", [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, "rt_replay", 3)
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():  # first arrivals: one dead-lettered, one handled
                assert len(await claim_in_inbox(conn, [copy_of("dead", 1, replay=False),
                                                       copy_of("handled", 2, replay=False)])) == 2
                await mark_dead_lettered(conn, ("/gateway", "dead"))
            async with conn.transaction():  # redeliveries without replay headers: nothing
                assert await claim_in_inbox(conn, [copy_of("dead", 3, replay=False)]) == set()
            async with conn.transaction():  # a replay of a handled event (another service's letter): nothing
                assert await claim_in_inbox(conn, [copy_of("handled", 4, replay=True)]) == set()

        async with pool.acquire() as first, pool.acquire() as second:
            one, other = first.transaction(), second.transaction()
            await one.start()
            await other.start()
            assert await claim_in_inbox(first, [copy_of("dead", 5, replay=True)]) == {("/gateway", "dead")}
            racing = asyncio.create_task(claim_in_inbox(second, [copy_of("dead", 6, replay=True)]))
            await asyncio.sleep(0.3)
            assert not racing.done()  # waits for the replay that holds the row
            await one.commit()
            assert await asyncio.wait_for(racing, 5) == set()  # handled by then: the second replay is a duplicate
            await other.rollback()

        async with pool.acquire() as conn, conn.transaction():  # replayed again later: still nothing
            assert await claim_in_inbox(conn, [copy_of("dead", 7, replay=True)]) == set()
    finally:
        await pool.close()
