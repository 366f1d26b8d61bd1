"""Prometheus metrics shared by every service (names prefixed `warden_`, base units)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "warden_events_consumed_total", "Events consumed, by topic and outcome",
    ["service", "topic", "outcome"],  # outcome: processed | duplicate | dead_lettered
)
PROCESSING_SECONDS = Histogram(
    "warden_event_processing_seconds", "Time to process one consumed batch, per event",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DLQ_EVENTS = Counter(
    "warden_dlq_events_total", "Events sent to a dead-letter topic, by reason",
    ["service", "topic", "reason"],
)
EVENTS_EMITTED = Counter(
    "warden_events_emitted_total", "Events written to the outbox, by topic and CloudEvent type",
    ["service", "topic", "type"],
)
OUTBOX_PUBLISHED = Counter(
    "warden_outbox_published_total", "Outbox rows relayed to Kafka", ["service", "topic"],
)
OUTBOX_BACKLOG = Gauge(
    "warden_outbox_backlog", "Rows in the outbox not yet relayed to Kafka, stuck ones included", ["service"],
)
OUTBOX_REFUSED = Counter(
    "warden_outbox_refused_total", "Outbox rows the broker refused for good, set aside in outbox_refused",
    ["service", "topic"],
)
OUTBOX_SET_ASIDE = Gauge(
    "warden_outbox_set_aside", "Rows waiting in outbox_refused for an operator", ["service"],
)
INBOX_PRUNED = Counter(
    "warden_inbox_pruned_total", "Inbox rows deleted once past the retention window", ["service"],
)
CONSUMER_LAG = Gauge(
    "warden_consumer_lag", "Records between the consumer position and the partition end",
    ["service", "topic", "partition"],
)
TRANSIENT_ERRORS = Counter(
    "warden_transient_errors_total", "Retried failures of the database or the broker",
    ["service", "component"],
)
READY = Gauge("warden_ready", "1 when the service is ready (group joined, database reachable)", ["service"])


def count_outgoing(service: str, rows) -> None:
    """Count committed outbox rows: dead letters by reason, events by topic and type."""
    for row in rows:
        if row.topic.endswith(".dlq"):
            reason = dict(row.headers).get("dlq.reason", b"").decode()
            DLQ_EVENTS.labels(service, row.topic[:-4], reason).inc()
        else:
            EVENTS_EMITTED.labels(service, row.topic, row.event_type).inc()
