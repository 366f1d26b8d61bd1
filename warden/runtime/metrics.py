"""Prometheus metrics shared by every service (names prefixed `warden_`, base units).

No metric carries the service's name: one process serves one service, and which one is
the scrape target's identity (the `warden_service` target label of deploy/prometheus and
of the ServiceMonitor). A `service` label of our own would clash with the Prometheus
Operator's target label of that name and be renamed `exported_service`.
"""
from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram

from warden.provenance import PROVENANCE_REASONS

EVENTS_CONSUMED = Counter(
    "warden_events_consumed_total", "Events consumed, by topic and outcome",
    ["topic", "outcome"],  # outcome: processed | duplicate | dead_lettered | ignored (Subscription.wants)
)
PROCESSING_SECONDS = Histogram(
    "warden_event_processing_seconds", "Time to process one consumed batch, per event",
    ["topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DLQ_EVENTS = Counter(
    "warden_dlq_events_total", "Events sent to a dead-letter topic, by reason",
    ["topic", "reason"],
)
FORGED_EVENTS = Counter(
    "warden_forged_events_total",
    "Events refused because they cannot be traced to a signed origin (a subset of warden_dlq_events_total)",
    ["topic", "reason"],
)
EVENTS_EMITTED = Counter(
    "warden_events_emitted_total", "Events written to the outbox, by topic and CloudEvent type",
    ["topic", "type"],
)
OUTBOX_PUBLISHED = Counter(
    "warden_outbox_published_total", "Outbox rows relayed to Kafka", ["topic"],
)
OUTBOX_BACKLOG = Gauge(
    "warden_outbox_backlog", "Rows in the outbox not yet relayed to Kafka, stuck ones included",
)
OUTBOX_REFUSED = Counter(
    "warden_outbox_refused_total", "Outbox rows the broker refused for good, set aside in outbox_refused",
    ["topic"],
)
OUTBOX_SET_ASIDE = Gauge(
    "warden_outbox_set_aside", "Rows waiting in outbox_refused for an operator",
)
INBOX_PRUNED = Counter(
    "warden_inbox_pruned_total", "Inbox rows deleted once past the retention window",
)
CONSUMER_LAG = Gauge(
    "warden_consumer_lag", "Records between the consumer position and the partition end",
    ["topic", "partition"],
)
TRANSIENT_ERRORS = Counter(
    "warden_transient_errors_total", "Retried failures of the database or the broker",
    ["component"],
)
# The runtime's components exist from the start at 0, so a rate over them is 0 rather than nothing.
for _component in ("database", "kafka", "outbox"):
    TRANSIENT_ERRORS.labels(_component)
JOB_FAILURES = Counter(
    "warden_job_failures_total", "Background job rounds failed on a non-transient error (tried again next round)",
    ["background_job"],  # not `job`: the scrape sets that label
)
READY = Gauge("warden_ready", "1 when the service is ready (group joined, database reachable)")


def count_consumed(outcomes: list[tuple[str, str]], seconds_per_event: float) -> None:
    """Count a committed batch's events, (topic, outcome) each, and observe each one's share of its time.

    One labelled child per topic and outcome, not per event: `labels()` is the costly part."""
    for (topic, outcome), n in Tally(outcomes).items():
        EVENTS_CONSUMED.labels(topic, outcome).inc(n)
    for topic, n in Tally(topic for topic, _ in outcomes).items():
        observe_many(PROCESSING_SECONDS.labels(topic), seconds_per_event, n)


def observe_many(histogram: Histogram, amount: float, times: int) -> None:
    """What `times` calls of `histogram.observe(amount)` leave (a labelled child, no exemplar), in two
    increments: a batch's events share one duration, and a thousand observe calls were 2 % of a worker's
    time. It reaches into prometheus_client's Histogram (pinned; tests/unit/runtime/test_metrics_counting.py
    holds it equal to the calls)."""
    if times <= 0:
        return
    histogram._raise_if_not_observable()
    histogram._sum.inc(amount * times)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(times)
            break


def count_outgoing(rows) -> None:
    """Count committed outbox rows: dead letters by reason (forgeries apart too), events by topic and type."""
    dead, emitted = Tally(), Tally()
    for row in rows:
        if row.topic.endswith(".dlq"):
            dead[row.topic[:-4], dict(row.headers).get("dlq.reason", b"").decode()] += 1
        else:
            emitted[row.topic, row.event_type] += 1
    for (topic, reason), n in dead.items():
        DLQ_EVENTS.labels(topic, reason).inc(n)
        if reason in PROVENANCE_REASONS:
            FORGED_EVENTS.labels(topic, reason).inc(n)
    for (topic, event_type), n in emitted.items():
        EVENTS_EMITTED.labels(topic, event_type).inc(n)
