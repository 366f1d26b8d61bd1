"""The public contract (DESIGN.md): these field names may gain siblings, never disappear."""
import pytest
from pydantic import ValidationError

from warden.contract.events import EVENT_MODELS, Suspect
from warden.contract.topics import TOPICS, all_topic_names

CONTRACT_FIELDS = {
    "warden.legal.request.submitted.v1": {
        "request_id", "authority_id", "instrument", "suspect", "offense", "data_categories", "period",
        "emergency", "emergency_justification", "nondisclosure_until", "signature"},
    "warden.legal.request.received.v1": {"case_id", "received_at", "request"},
    "warden.legal.request.approved.v1": {
        "case_id", "request_id", "authority_id", "suspect", "kind", "data_categories", "period",
        "hold_until", "nondisclosure_until", "policy_rules", "decided_by"},
    "warden.legal.request.rejected.v1": {"case_id", "request_id", "authority_id", "reasons", "decided_by"},
    "warden.legal.disclosure.issued.v1": {
        "case_id", "request_id", "authority_id", "account_id", "period", "generated_at", "redacted",
        "sealed", "sha256", "signature"},
    "warden.legal.request.status.v1": {"request_id", "authority_id", "case_id", "status", "reasons", "at"},
    "warden.legal.notice.due.v1": {"case_id", "account_id", "due_at"},
    "warden.legal.audit.checkpoint.v1": {"service", "seq", "head", "at", "signature"},
    "warden.legal.authority.registered.v1": {
        "authority_id", "name", "country", "kind", "public_key", "status", "updated_at"},
    "warden.subscriber.account.updated.v1": {"account_id", "username", "phone_number", "country", "updated_at"},
    "warden.subscriber.session.observed.v1": {"account_id", "ip", "observed_at"},
    "warden.moderation.report.submitted.v1": {
        "report_id", "reporter_id", "reported_at", "surface", "content", "reason", "comment"},
    "warden.moderation.appeal.submitted.v1": {"appeal_id", "content_id", "account_id", "statement", "submitted_at"},
    "warden.moderation.decision.v1": {
        "decision_id", "content_id", "action", "ground", "category", "automated_detection",
        "automated_decision", "facts", "appealable_until"},
    "warden.moderation.violation.confirmed.v1": {"account_id", "content_id", "category", "decided_at"},
    "warden.moderation.violation.withdrawn.v1": {"account_id", "content_id", "decision_id", "withdrawn_at"},
    "warden.moderation.notice.v1": {"notice_id", "account_id", "kind", "decision_id", "content_id", "text", "at"},
    "warden.platform.content.updated.v1": {
        "content_id", "kind", "owner_account_id", "title", "text", "language", "public_in_search", "created_at",
        "updated_at", "media"},
    "warden.platform.content.removed.v1": {"content_id", "removed_at"},
}

CONTRACT_TOPICS = {
    "legal.requests.submitted", "moderation.reports.submitted", "moderation.appeals.submitted",
    "legal.authorities", "platform.subscribers", "legal.requests.received", "legal.requests.decided",
    "legal.disclosures.issued", "legal.requests.status", "legal.notices.due", "search.delistings",
    "moderation.decisions", "moderation.violations", "legal.audit.checkpoints", "platform.content",
    "moderation.notices",
}


@pytest.mark.parametrize("event_type", sorted(CONTRACT_FIELDS))
def test_contract_fields_are_kept(event_type):
    assert CONTRACT_FIELDS[event_type] <= set(EVENT_MODELS[event_type].model_fields)


def test_every_contract_topic_is_registered_with_a_dlq_for_each_consumed_one():
    assert set(TOPICS) == CONTRACT_TOPICS
    names = set(all_topic_names())
    for topic in TOPICS.values():
        if topic.consumers:
            assert topic.dlq in names


def test_keys_follow_the_contract():
    assert TOPICS["moderation.reports.submitted"].key_of({"content": {"id": "c1"}}) == "c1"
    assert TOPICS["legal.requests.submitted"].key_of({"authority_id": "a"}) == "a"
    assert TOPICS["legal.authorities"].compacted
    assert TOPICS["legal.audit.checkpoints"].key_of({"service": "disclosure"}) == "disclosure"
    assert TOPICS["legal.audit.checkpoints"].compacted


def test_suspect_must_name_someone():
    with pytest.raises(ValidationError, match="at least one"):
        Suspect()
    assert Suspect(username="x").username == "x"
