"""What the agent reads back before a batch: the offsets between its recorded place and the batch."""
from aiokafka.structs import ConsumerRecord

from moderation.continuity import missing_ranges, next_offsets


def record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


def test_a_batch_that_starts_where_handling_stopped_misses_nothing():
    assert missing_ranges(10, [10, 11, 12]) == []


def test_a_batch_that_starts_past_the_recorded_place_misses_what_lies_between():
    assert missing_ranges(25, [33, 34]) == [(25, 32)]


def test_holes_inside_a_batch_are_missing_too():
    assert missing_ranges(5, [5, 7, 8, 12]) == [(6, 6), (9, 11)]


def test_records_already_handled_miss_nothing_and_order_does_not_matter():
    assert missing_ranges(40, [36, 34, 41, 40, 35]) == []
    assert missing_ranges(40, [44, 36, 41]) == [(40, 40), (42, 43)]


def test_nothing_recorded_yet_means_nothing_to_read_back():
    assert missing_ranges(None, [100, 104]) == []
    assert missing_ranges(3, []) == []


def test_next_offsets_is_one_past_the_highest_per_partition():
    records = [record("a", 0, 7), record("a", 0, 5), record("a", 1, 0), record("b", 0, 9)]
    assert next_offsets(records) == {("a", 0): 8, ("a", 1): 1, ("b", 0): 10}
