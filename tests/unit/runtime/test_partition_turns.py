"""With more than one batch in flight, each batch is one partition's records, the partitions taken in turn
(ConsumerLoop.poll): reports about one item share a partition, so batches in flight do not wait for each
other's locks on it. With one batch in flight a batch is a poll of every partition, as before."""
from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord

from warden.runtime.consumer import ConsumerLoop
from warden.runtime.service import Service, Subscription

TOPIC = "moderation.reports.submitted"
P0, P1, P2 = (TopicPartition(TOPIC, p) for p in range(3))


def records(tp: TopicPartition, first: int, count: int) -> list[ConsumerRecord]:
    return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"{}", None, 1, 2, ())
            for o in range(first, first + count)]


class HoldingConsumer:
    """Records already fetched, by partition, as aiokafka's consumer holds them; what each getmany asked for."""

    def __init__(self, held: dict[TopicPartition, list[ConsumerRecord]]):
        self.held = {tp: list(rs) for tp, rs in held.items()}
        self.asked: list[tuple[tuple[TopicPartition, ...], int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int):
        self.asked.append((partitions, timeout_ms))
        out = {}
        for tp in partitions or sorted(self.held):
            take = self.held[tp][:max_records - sum(len(r) for r in out.values())]
            if take:
                out[tp] = take
                self.held[tp] = self.held[tp][len(take):]
        return out

    def highwater(self, tp):
        return None


def loop_with(consumer: HoldingConsumer, batches_in_flight: int) -> ConsumerLoop:
    return ConsumerLoop(Service("turns", "unused", [Subscription(TOPIC, None)], []), pool=None, consumer=consumer,
                        batch_max_records=100, poll_timeout_ms=50, retry_initial_s=0.1, retry_max_s=0.1,
                        batches_in_flight=batches_in_flight)


async def test_batches_in_flight_take_the_partitions_in_turn():
    consumer = HoldingConsumer({P0: records(P0, 0, 250), P1: records(P1, 0, 150), P2: []})
    loop = loop_with(consumer, batches_in_flight=3)

    batches = [await loop.poll(50) for _ in range(6)]

    assert [{tp: (rs[0].offset, len(rs)) for tp, rs in b.items()} for b in batches] == [
        {P0: (0, 100)}, {P1: (0, 100)}, {P0: (100, 100)}, {P1: (100, 50)}, {P0: (200, 50)}, {}]
    # what the consumer holds is taken without waiting; only when it holds nothing does a poll wait, on every partition
    assert all(timeout == 0 and len(asked) == 1 for asked, timeout in consumer.asked[:-1])
    assert consumer.asked[-1] == ((), 50)


async def test_one_batch_in_flight_is_a_poll_of_every_partition():
    consumer = HoldingConsumer({P0: records(P0, 0, 30), P1: records(P1, 0, 30)})
    loop = loop_with(consumer, batches_in_flight=1)

    batch = await loop.poll(50)

    assert {tp: len(rs) for tp, rs in batch.items()} == {P0: 30, P1: 30}
    assert consumer.asked == [((), 50)]


async def test_partitions_assigned_later_join_the_turns_and_revoked_ones_leave():
    consumer = HoldingConsumer({P0: records(P0, 0, 10)})
    loop = loop_with(consumer, batches_in_flight=2)
    assert list(await loop.poll(0)) == [P0]

    consumer.held = {P1: records(P1, 0, 10), P2: records(P2, 0, 10)}  # a rebalance: P0 went, P1 and P2 came

    assert [list(await loop.poll(0)) for _ in range(2)] == [[P1], [P2]]
    assert all(P0 not in asked for asked, _ in consumer.asked[1:])


async def test_a_partition_revoked_between_two_turns_sends_the_poll_to_every_partition():
    consumer = HoldingConsumer({P0: records(P0, 0, 10), P1: records(P1, 0, 10)})
    loop = loop_with(consumer, batches_in_flight=2)
    asked = consumer.getmany

    async def revoked_meanwhile(*partitions, timeout_ms, max_records):
        if partitions == (P0,):
            del consumer.held[P0]  # the rebalance took it after the turns were drawn up
            raise IllegalStateError("No current assignment for partition")
        return await asked(*partitions, timeout_ms=timeout_ms, max_records=max_records)
    consumer.getmany = revoked_meanwhile

    batch = await loop.poll(50)

    assert {tp: len(rs) for tp, rs in batch.items()} == {P1: 10}  # the poll of every partition assigned
    assert consumer.asked[-1] == ((), 50) and not loop.turns
