"""A committed batch is counted per event, though labelled once per topic and outcome."""
import uuid

from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from warden.contract.envelope import EventRejected
from warden.runtime import metrics
from warden.runtime.dead_letters import dlq_row
from warden.runtime.outbox import OutboxRow


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_event_of_a_batch_is_counted_and_observed():
    a, b = f"a.{uuid.uuid4().hex[:6]}", f"b.{uuid.uuid4().hex[:6]}"  # counters are process-wide: topics of our own
    outcomes = [(a, "processed")] * 3 + [(a, "duplicate"), (b, "dead_lettered")]
    metrics.count_consumed(outcomes, 0.002)
    metrics.count_consumed([(a, "processed")], 0.2)
    assert sample("warden_events_consumed_total", topic=a, outcome="processed") == 4
    assert sample("warden_events_consumed_total", topic=a, outcome="duplicate") == 1
    assert sample("warden_events_consumed_total", topic=b, outcome="dead_lettered") == 1
    assert sample("warden_event_processing_seconds_count", topic=a) == 5
    assert sample("warden_event_processing_seconds_bucket", topic=a, le="0.0025") == 4
    assert sample("warden_event_processing_seconds_count", topic=b) == 1


def test_emitted_events_and_dead_letters_are_counted_per_row():
    source = "moderation.reports.submitted"
    record = ConsumerRecord(source, 0, 7, 0, 0, b"k", b"v", None, 1, 1, [])
    event_type = f"warden.test.{uuid.uuid4().hex[:6]}.v1"
    rows = [OutboxRow("search.delistings", b"k", b"v", [], event_type)] * 2 + [
        dlq_row("moderation", record, EventRejected("invalid_data", "x")),
        dlq_row("moderation", record, EventRejected("invalid_data", "y")),
        dlq_row("moderation", record, EventRejected("undecodable", "z"))]
    invalid, undecodable = (sample("warden_dlq_events_total", topic=source, reason=r)
                            for r in ("invalid_data", "undecodable"))
    metrics.count_outgoing(rows)
    assert sample("warden_events_emitted_total", topic="search.delistings", type=event_type) == 2
    assert sample("warden_dlq_events_total", topic=source, reason="invalid_data") == invalid + 2
    assert sample("warden_dlq_events_total", topic=source, reason="undecodable") == undecodable + 1


def test_observing_many_at_once_leaves_what_observing_each_leaves():
    from prometheus_client import CollectorRegistry, Histogram
    registry = CollectorRegistry()
    buckets = (0.001, 0.01, 0.1, 1)
    one_by_one = Histogram("one_by_one_seconds", "x", ["topic"], buckets=buckets, registry=registry)
    at_once = Histogram("at_once_seconds", "x", ["topic"], buckets=buckets, registry=registry)
    for amount, times in ((0.0004, 3), (0.01, 5), (0.5, 1), (7.0, 2), (0.05, 0)):
        for _ in range(times):
            one_by_one.labels("t").observe(amount)
        metrics.observe_many(at_once.labels("t"), amount, times)

    def samples(name):
        return {(s.name.removeprefix(name), tuple(sorted(s.labels.items()))): round(s.value, 9)
                for family in registry.collect() if family.name == name for s in family.samples
                if not s.name.endswith("_created")}
    assert samples("one_by_one_seconds") == samples("at_once_seconds")
    assert samples("at_once_seconds")[("_count", (("topic", "t"),))] == 11
