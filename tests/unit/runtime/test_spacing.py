"""consumer.Spacing: which partitions a poll pauses, and what happens to them on resume and on revocation
(the broker is left out; tests/integration/runtime/test_spaced_reads.py runs it on a real one)."""
from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from warden.runtime.consumer import Spacing

VIEW, FLOW = TopicPartition("legal.requests.progress", 0), TopicPartition("legal.requests.received", 1)
OTHER_VIEW = TopicPartition("legal.requests.progress", 1)


def up_to(tp: TopicPartition, last: int) -> list[ConsumerRecord]:
    """A poll's records of `tp`, offsets 0..last."""
    return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"{}", None, 1, 2, ()) for o in range(last + 1)]


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition], ends: dict[TopicPartition, int] | None = None):
        self.assigned = set(assigned)
        self.ends = ends or {}  # each partition's end (the next offset) as of the last fetch
        self.paused_now: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

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


async def test_only_the_spaced_partitions_a_poll_read_to_their_end_are_paused_until_their_interval_passes():
    consumer = FakeConsumer({VIEW, FLOW, OTHER_VIEW}, ends={VIEW: 3, FLOW: 2, OTHER_VIEW: 5})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})

    spacing.after_poll({VIEW: up_to(VIEW, 2), FLOW: up_to(FLOW, 1)})
    assert consumer.paused_now == {VIEW}  # not the flowing topic, nor the view's partition the poll did not bring

    await asyncio.sleep(0.1)
    assert consumer.paused_now == set() and spacing.paused == {}


async def test_a_view_behind_its_partitions_end_reads_on_at_full_speed():
    consumer = FakeConsumer({VIEW}, ends={VIEW: 10_000})  # a restart: the poll took 500 of 10,000 waiting
    spacing = Spacing(consumer, {VIEW.topic: 60})

    spacing.after_poll({VIEW: up_to(VIEW, 499)})
    assert consumer.paused_now == set()

    consumer.ends[VIEW] = 500  # caught up
    spacing.after_poll({VIEW: up_to(VIEW, 499)})
    assert consumer.paused_now == {VIEW}
    spacing.forget(list(spacing.paused))


async def test_revoked_partitions_keep_no_timer_and_start_unpaused_when_assigned_again():
    consumer = FakeConsumer({VIEW, OTHER_VIEW}, ends={VIEW: 1, OTHER_VIEW: 1})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})
    spacing.after_poll({VIEW: up_to(VIEW, 0), OTHER_VIEW: up_to(OTHER_VIEW, 0)})

    spacing.forget([VIEW, OTHER_VIEW])  # revoked
    consumer.reassign({VIEW})
    assert spacing.paused == {}
    await asyncio.sleep(0.1)  # no timer left to resume anything (the fake refuses what it does not hold)

    spacing.after_poll({VIEW: up_to(VIEW, 0)})  # paused again by the next poll that brings it
    assert consumer.paused_now == {VIEW}
    spacing.forget(list(spacing.paused))


async def test_a_partition_gone_before_its_timer_fires_is_not_resumed():
    consumer = FakeConsumer({VIEW}, ends={VIEW: 1})
    spacing = Spacing(consumer, {VIEW.topic: 0.05})
    spacing.after_poll({VIEW: up_to(VIEW, 0)})
    consumer.reassign(set())
    await asyncio.sleep(0.1)
    assert spacing.paused == {}
