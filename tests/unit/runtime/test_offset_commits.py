"""Offsets are committed at most once per commit interval, and everything handled is committed on stop
and before partitions are revoked (the database work is left out: only the loop's commit policy is tested)."""
from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from warden.runtime.consumer import ConsumerLoop
from warden.runtime.service import Service, Subscription

TOPIC = "legal.requests.received"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def batch(tp: TopicPartition, *offsets: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    return {tp: [ConsumerRecord(TOPIC, tp.partition, o, 0, 0, b"k", b"{}", None, 1, 2, ()) for o in offsets]}


class FakeConsumer:
    """Hands out the given batches, then stops the loop; notes every commit."""

    def __init__(self, batches: list[dict], stopping: asyncio.Event):
        self.batches = list(batches)
        self.stopping = stopping
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int):
        if not self.batches:
            self.stopping.set()
            return {}
        return self.batches.pop(0)

    async def commit(self, offsets):
        await asyncio.sleep(0)
        self.commits.append(dict(offsets))

    def highwater(self, tp):
        return None


async def run_loop(batches: list[dict], commit_interval_s: float) -> tuple[ConsumerLoop, FakeConsumer]:
    stopping = asyncio.Event()
    consumer = FakeConsumer(batches, stopping)
    loop = ConsumerLoop(Service("commit-test", "unused", [Subscription(TOPIC, None)], []), pool=None,
                        consumer=consumer, batch_max_records=100, poll_timeout_ms=10, retry_initial_s=0.1,
                        retry_max_s=0.1, commit_interval_s=commit_interval_s)

    async def handled(records, stopping, decoded=None):  # the batch's transaction committed
        return True

    loop.process_until_done = handled
    await loop.run(stopping)
    return loop, consumer


async def test_within_the_interval_batches_share_a_commit_and_stopping_commits_the_rest():
    _, consumer = await run_loop([batch(P0, 0, 1), batch(P1, 0), batch(P0, 2, 3), batch(P1, 1, 2)], 60)

    assert consumer.commits == [{P0: 2}, {P0: 4, P1: 3}]  # the first at once, the rest on stop


async def test_without_an_interval_every_batch_is_committed():
    _, consumer = await run_loop([batch(P0, 0, 1), batch(P1, 0), batch(P0, 2, 3)], 0)

    assert consumer.commits == [{P0: 2}, {P1: 1}, {P0: 4}]


async def test_revoked_partitions_are_committed_first():
    loop, consumer = await run_loop([], 60)
    loop.note_handled(batch(P0, 5, 6))
    loop.note_handled(batch(P1, 9))

    await loop.membership.on_partitions_revoked({P0, P1})

    assert consumer.commits == [{P0: 7, P1: 10}]
