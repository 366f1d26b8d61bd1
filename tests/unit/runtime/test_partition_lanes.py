"""partition_lanes: how a batch's records are shared among a service's concurrent transactions."""
from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from warden.runtime.batch import partition_lanes


class Item:
    def __init__(self, partition: int, offset: int):
        self.record = ConsumerRecord("moderation.reports.submitted", partition, offset, 0, 0, b"k", b"{}", None,
                                     0, 2, ())


def test_lanes_keep_each_partition_whole_and_in_order():
    items = [Item(p, o) for o in range(5) for p in (0, 1, 2)] + [Item(3, 0)]
    lanes = partition_lanes(items, 2)
    assert len(lanes) == 2 and sum(map(len, lanes)) == len(items)
    for lane in lanes:
        for p in {i.record.partition for i in lane}:
            assert [i.record.offset for i in lane if i.record.partition == p] == \
                   [i.record.offset for i in items if i.record.partition == p]
    assert {i.record.partition for i in lanes[0]}.isdisjoint({i.record.partition for i in lanes[1]})
    assert sorted(map(len, lanes)) == [6, 10]  # largest partitions first, each to the emptier lane
    assert partition_lanes(items, 1) == [items]
