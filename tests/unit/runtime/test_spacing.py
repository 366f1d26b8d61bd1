"""consumer.Spacing: which partitions a poll pauses, and what happens to them on resume and on revocation
(the broker is left out; tests/integration/runtime/test_spaced_reads.py runs it on a real one)."""
from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from warden.runtime.consumer import Spacing

VIEW, FLOW = TopicPartition("legal.requests.progress", 0), TopicPartition("legal.requests.received", 1)
OTHER_VIEW = TopicPartition("legal.requests.progress", 1)


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition]):
        self.assigned = set(assigned)
        self.paused_now: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps):
        assert all(tp in self.assigned for tp in tps)  # aiokafka refuses to pause what it does not hold
        self.paused_now.update(tps)

    def reassign(self, assigned: set[TopicPartition]) -> None:
        """As aiokafka does: partitions assigned anew start unpaused."""
        self.assigned = set(assigned)
        self.paused_now = set()

    def resume(self, *tps):
        assert all(tp in self.assigned for tp in tps)
        self.paused_now.difference_update(tps)


async def test_only_the_spaced_partitions_a_poll_brought_are_paused_until_their_interval_passes():
    consumer = FakeConsumer({VIEW, FLOW, OTHER_VIEW})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})

    spacing.after_poll({VIEW: [], FLOW: []})
    assert consumer.paused_now == {VIEW}  # not the flowing topic, nor the view's partition the poll did not bring

    await asyncio.sleep(0.1)
    assert consumer.paused_now == set() and spacing.paused == {}


async def test_revoked_partitions_keep_no_timer_and_start_unpaused_when_assigned_again():
    consumer = FakeConsumer({VIEW, OTHER_VIEW})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})
    spacing.after_poll({VIEW: [], OTHER_VIEW: []})

    spacing.forget([VIEW, OTHER_VIEW])  # revoked
    consumer.reassign({VIEW})
    assert spacing.paused == {}
    await asyncio.sleep(0.1)  # no timer left to resume anything (the fake refuses what it does not hold)

    spacing.after_poll({VIEW: []})  # paused again by the next poll that brings it
    assert consumer.paused_now == {VIEW}
    spacing.forget(list(spacing.paused))


async def test_a_partition_gone_before_its_timer_fires_is_not_resumed():
    consumer = FakeConsumer({VIEW})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})
    spacing.after_poll({VIEW: []})
    consumer.reassign(set())
    await asyncio.sleep(0.1)
    assert spacing.paused == {}
