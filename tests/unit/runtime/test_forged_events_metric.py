"""Dead letters whose reason says "no signed origin" are counted apart, as warden_forged_events_total."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from prometheus_client import REGISTRY

from warden.provenance import PROVENANCE_REASONS
from warden.runtime import metrics
from warden.runtime.outbox import OutboxRow

ROOT = Path(__file__).resolve().parents[3]


def sample(name: str, topic: str, reason: str) -> float:
    return REGISTRY.get_sample_value(name, {"topic": topic, "reason": reason}) or 0.0


def dead_letter(topic: str, reason: str) -> OutboxRow:
    return OutboxRow(f"{topic}.dlq", b"k", b"v", [("dlq.reason", reason.encode())])


def test_a_forgery_counts_as_a_dead_letter_and_as_forged_an_invalid_event_only_as_a_dead_letter():
    topic = f"t{uuid.uuid4().hex[:8]}"
    metrics.count_outgoing([dead_letter(topic, "bad_decision_signature"), dead_letter(topic, "invalid_data"),
                            dead_letter(topic, "registry_unsigned")])
    assert sample("warden_dlq_events_total", topic, "bad_decision_signature") == 1
    assert sample("warden_dlq_events_total", topic, "invalid_data") == 1
    assert sample("warden_forged_events_total", topic, "bad_decision_signature") == 1
    assert sample("warden_forged_events_total", topic, "registry_unsigned") == 1
    assert sample("warden_forged_events_total", topic, "invalid_data") == 0


def test_every_provenance_reason_is_one_the_code_gives():
    given = set()
    for path in [*(ROOT / "warden").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        given |= set(re.findall(r'(?:EventRejected|UnknownYet)\(\s*"([a-z_]+)"', path.read_text()))
    assert PROVENANCE_REASONS <= given, f"reasons no code gives: {sorted(PROVENANCE_REASONS - given)}"
    assert {"invalid_data", "undecodable", "handler_error", "unknown_authority"}.isdisjoint(PROVENANCE_REASONS)
