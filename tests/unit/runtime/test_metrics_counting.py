"""A committed batch is counted per event, though labelled once per topic and outcome."""
import uuid

from prometheus_client import REGISTRY

from warden.runtime import metrics
from warden.runtime.dead_letters import dlq_row
from warden.runtime.outbox import OutboxRow
from warden.contract.envelope import EventRejected
from aiokafka.structs import ConsumerRecord


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_event_of_a_batch_is_counted_and_observed():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    outcomes = [("a.topic", "processed")] * 3 + [("a.topic", "duplicate"), ("b.topic", "dead_lettered")]
    metrics.count_consumed(service, outcomes, 0.002)
    metrics.count_consumed(service, [("a.topic", "processed")], 0.2)
    assert sample("warden_events_consumed_total", service=service, topic="a.topic", outcome="processed") == 4
    assert sample("warden_events_consumed_total", service=service, topic="a.topic", outcome="duplicate") == 1
    assert sample("warden_events_consumed_total", service=service, topic="b.topic", outcome="dead_lettered") == 1
    assert sample("warden_event_processing_seconds_count", service=service, topic="a.topic") == 5
    assert sample("warden_event_processing_seconds_bucket", service=service, topic="a.topic", le="0.0025") == 4
    assert sample("warden_event_processing_seconds_count", service=service, topic="b.topic") == 1


def test_emitted_events_and_dead_letters_are_counted_per_row():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    record = ConsumerRecord("moderation.reports.submitted", 0, 7, 0, 0, b"k", b"v", None, 1, 1, [])
    rows = [OutboxRow("search.delistings", b"k", b"v", [], "warden.search.content.delisted.v1")] * 2 + [
        dlq_row(service, record, EventRejected("invalid_data", "x")),
        dlq_row(service, record, EventRejected("invalid_data", "y")),
        dlq_row(service, record, EventRejected("undecodable", "z"))]
    metrics.count_outgoing(service, rows)
    assert sample("warden_events_emitted_total", service=service, topic="search.delistings",
                  type="warden.search.content.delisted.v1") == 2
    assert sample("warden_dlq_events_total", service=service, topic="moderation.reports.submitted",
                  reason="invalid_data") == 2
    assert sample("warden_dlq_events_total", service=service, topic="moderation.reports.submitted",
                  reason="undecodable") == 1
