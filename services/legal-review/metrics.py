"""Legal review's own metrics (the shared consumer/outbox metrics come from warden.runtime.metrics).

The gauges are refreshed from the cases table by the deadline sweep (jobs.py), so every
replica publishes the same figures: dashboards and alerts take their max, not their sum.
"""
from prometheus_client import Gauge, Histogram

CASES_OVERDUE = Gauge("warden_legal_cases_overdue", "Cases awaiting review past their deadline", ["priority"])
CASES_PENDING = Gauge("warden_legal_cases_pending_review", "Cases awaiting human review", ["priority"])
OLDEST_PENDING_AGE = Gauge(
    "warden_legal_oldest_pending_case_age_seconds",
    "Age of the oldest case awaiting human review, from its reception (0 when none waits)", ["priority"])
EMERGENCIES_UNCONFIRMED = Gauge(
    "warden_legal_emergencies_unconfirmed",
    "Non-judicial emergency cases past the 48 h confirmation window without a confirming judicial order")
# decided_by: policy (the machine, as the request arrives) or reviewers (a human decision closed the case).
TIME_TO_DECISION = Histogram(
    "warden_legal_time_to_decision_seconds", "From a request's reception to its decision",
    ["outcome", "decided_by"],
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 10 * 86400))


def decided(outcome: str, decided_by: str, seconds: float) -> None:
    TIME_TO_DECISION.labels(outcome, decided_by).observe(max(seconds, 0.0))
