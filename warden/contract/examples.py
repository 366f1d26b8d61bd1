"""One example of each event's data, for docs/asyncapi.yaml (`make asyncapi`).

They follow one story: the Paris court's request REQ-1 (docs/examples/request.json, signed with
docs/examples/example-court-key.json), its case, decision and package, and a report on a channel.
tests/unit/contract/test_examples.py validates each against its model and checks the signed
request against the example key. Signatures other than the request's, and sealed bytes, are
placeholders of the right shape.
"""
from __future__ import annotations

from typing import Any

CASE_ID = "3822f292-06e3-5d2a-b2db-0423aa24b3c1"  # warden.identifiers.case_id_for("fr-tj-paris", "REQ-1")
COURT_KEY = "hlMWKxW+oOYkKvbaumSdEssCNkpb6Espqx5wq7kvM6w="
PLACEHOLDER_SIGNATURE = "c2lnbmF0dXJlIHBsYWNlaG9sZGVyIChFZDI1NTE5LCA2NCBieXRlcyk="
PERIOD = {"start": "2026-08-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00"}

SUBMITTED_REQUEST: dict[str, Any] = {
    "request_id": "REQ-1",
    "authority_id": "fr-tj-paris",
    "instrument": {"type": "court_order", "reference": "RG 26/04711",
                   "issued_by": "Juge d'instruction, Tribunal judiciaire de Paris",
                   "issued_at": "2026-11-20T09:30:00+01:00", "expires_at": None},
    "suspect": {"username": "@Dealer_42", "phone_number": "+33 6 12 34 56 78"},
    "offense": {"category": "drug_trafficking", "statute": "Code pénal, art. 222-37",
                "description": "Sale of narcotics through a public channel"},
    "data_categories": ["ip_addresses", "phone_number"],
    "period": PERIOD,
    "emergency": False,
    "nondisclosure_until": None,
    "signature": "8L01ZuQKF0CElGv9k+yfmf4c3APN1+XEu7BvQcBQGm1uNHGxd6BEuSe0fVBExwmy/0uUbASUErRh8iLcxAeqAw==",
}
SUSPECT = {"account_id": None, "username": "dealer_42", "phone_number": "+33612345678"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "warden.legal.request.submitted.v1": SUBMITTED_REQUEST,
    "warden.legal.request.received.v1": {
        "case_id": CASE_ID, "received_at": "2026-11-20T10:00:01+00:00",
        "request": dict(SUBMITTED_REQUEST, suspect=SUSPECT), "submitted": SUBMITTED_REQUEST},
    "warden.legal.request.approved.v1": {
        "case_id": CASE_ID, "request_id": "REQ-1", "authority_id": "fr-tj-paris", "suspect": SUSPECT,
        "kind": "disclosure", "data_categories": ["ip_addresses", "phone_number"], "period": PERIOD,
        "hold_until": None, "nondisclosure_until": None,
        "policy_rules": [{"rule": "authority.active", "outcome": "passed", "message": "registered court in FR"},
                         {"rule": "data.grantable", "outcome": "passed", "message": "ip_addresses, phone_number"}],
        "decided_by": ["policy"], "signed_request": SUBMITTED_REQUEST, "authority_key": COURT_KEY,
        "decided_at": "2026-11-20T10:00:02+00:00", "decision_key_id": "0f3a9c2e71b4d856",
        "decision_signature": PLACEHOLDER_SIGNATURE,
        "user_notice": {"by": "platform", "not_before": None, "rule": "notice.jurisdiction",
                        "source": "Regulation (EU) 2023/1543 Art. 13"}},
    "warden.legal.request.rejected.v1": {
        "case_id": CASE_ID, "request_id": "REQ-1", "authority_id": "fr-tj-paris",
        "reasons": [{"code": "period_too_long", "rule": "period.max_length",
                     "message": "the period is 14 months long; at most 12"}],
        "decided_by": ["policy"], "decided_at": "2026-11-20T10:00:02+00:00",
        "decision_key_id": "0f3a9c2e71b4d856", "decision_signature": PLACEHOLDER_SIGNATURE},
    "warden.legal.request.status.v1": {
        "request_id": "REQ-1", "authority_id": "fr-tj-paris", "case_id": CASE_ID, "status": "needs_clarification",
        "reasons": [{"code": "clarification_requested", "message": ""}], "at": "2026-11-20T14:00:00+00:00",
        "deadline": None},
    "warden.legal.request.progress.v1": {
        "request_id": "REQ-1", "authority_id": "fr-tj-paris", "case_id": CASE_ID, "status": "needs_clarification",
        "reasons": [{"code": "clarification_requested", "message": "a reviewer asked a question"}],
        "at": "2026-11-20T14:00:00+00:00", "deadline": None,
        "clarification": {"clarification_id": "q-1", "asked_at": "2026-11-20T14:00:00+00:00",
                          "question": "Is the channel the suspect's own, and are both data categories needed?"}},
    "warden.legal.request.amended.v1": {
        "request_id": "REQ-1", "authority_id": "fr-tj-paris", "clarification_id": "q-1",
        "answer": "The channel is his own; IP addresses suffice.", "data_categories": ["ip_addresses"],
        "period": None, "amended_at": "2026-11-21T09:00:00+01:00", "signature": PLACEHOLDER_SIGNATURE},
    "warden.legal.request.withdrawn.v1": {
        "request_id": "REQ-2", "authority_id": "fr-tj-paris", "reason": "investigation closed",
        "withdrawn_at": "2026-11-22T09:00:00+01:00", "signature": PLACEHOLDER_SIGNATURE},
    "warden.legal.disclosure.issued.v1": {
        "case_id": CASE_ID, "request_id": "REQ-1", "authority_id": "fr-tj-paris", "account_id": "acct-1029",
        "period": PERIOD, "generated_at": "2026-11-20T10:00:03+00:00",
        "redacted": {"phone_numbers": ["+33 ***"], "ip_address_count": 4},
        "sealed": "c2VhbGVkIGJveCBwbGFjZWhvbGRlcg==",
        "sha256": "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
        "signature": PLACEHOLDER_SIGNATURE},
    "warden.legal.notice.due.v1": {"case_id": CASE_ID, "account_id": "acct-1029",
                                   "due_at": "2027-02-18T10:00:03+00:00"},
    "warden.legal.audit.checkpoint.v1": {
        "service": "legal-review", "chain_id": "5d1f0c8e-7a2b-4c3d-9e8f-0a1b2c3d4e5f", "seq": 1842,
        "head": "4b7e1a9c2d3f5e60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
        "at": "2026-11-20T10:05:00+00:00", "key_id": "7c1e5a9b3d2f4e60", "signature": PLACEHOLDER_SIGNATURE},
    "warden.legal.authority.registered.v1": {
        "authority_id": "fr-tj-paris", "name": "Tribunal judiciaire de Paris", "country": "FR", "kind": "court",
        "public_key": COURT_KEY, "status": "active", "updated_at": "2026-11-19T08:00:00+00:00",
        "signatures": [{"key_id": "a41c7e2b9d3f5e60", "signature": PLACEHOLDER_SIGNATURE}]},
    "warden.subscriber.account.updated.v1": {
        "account_id": "acct-1029", "username": "dealer_42", "phone_number": "+33612345678", "country": "FR",
        "updated_at": "2026-07-02T12:00:00+00:00"},
    "warden.subscriber.session.observed.v1": {"account_id": "acct-1029", "ip": "203.0.113.7",
                                              "observed_at": "2026-09-14T21:13:08+00:00"},
    "warden.moderation.report.submitted.v1": {
        "report_id": "rep-55120", "reporter_id": "acct-8812", "reported_at": "2026-11-18T17:42:00+00:00",
        "surface": "search",
        "content": {"kind": "channel", "id": "chan-7731", "owner_account_id": None, "title": "Fast delivery 24/7",
                    "text": None},
        "reason": "drugs", "comment": "Prices for pills in the pinned message"},
    "warden.moderation.appeal.submitted.v1": {
        "appeal_id": "app-301", "content_id": "chan-7731", "account_id": "acct-1029",
        "statement": "The channel sells legal herbal tea.", "submitted_at": "2026-11-19T09:00:00+00:00"},
    "warden.search.content.delisted.v1": {"content_id": "chan-7731", "decision_id": "dec-9001",
                                          "category": "drugs", "delisted_at": "2026-11-18T18:00:00+00:00"},
    "warden.search.content.relisted.v1": {"content_id": "chan-7731", "decision_id": "dec-9002",
                                          "relisted_at": "2026-11-22T09:30:00+00:00"},
    "warden.moderation.decision.v1": {
        "decision_id": "dec-9001", "content_id": "chan-7731", "action": "delist_from_search",
        "ground": "terms_of_service", "category": "drugs", "automated_detection": True,
        "automated_decision": "PARTIALLY", "facts": "Twelve reports from trusted reporters; a moderator confirmed "
        "offers of controlled substances in the pinned message.",
        "appealable_until": "2027-05-18T18:00:00+00:00", "territorial_scope": []},
    "warden.moderation.violation.confirmed.v1": {"account_id": "acct-1029", "content_id": "chan-7731",
                                                 "category": "drugs", "decided_at": "2026-11-18T18:00:00+00:00"},
    "warden.moderation.violation.withdrawn.v1": {"account_id": "acct-1029", "content_id": "chan-7731",
                                                 "decision_id": "dec-9002", "withdrawn_at": "2026-11-22T09:30:00+00:00"},
    "warden.moderation.notice.v1": {
        "notice_id": "ntc-4410", "account_id": "acct-8812", "kind": "notice_outcome", "decision_id": "dec-9001",
        "content_id": "chan-7731", "text": "The channel you reported was removed from public search: it offered "
        "controlled substances.", "at": "2026-11-18T18:00:01+00:00"},
    "warden.platform.content.updated.v1": {
        "content_id": "chan-7731", "kind": "channel", "owner_account_id": "acct-1029", "title": "Fast delivery 24/7",
        "text": "Pinned: price list in the first message", "language": "fr", "public_in_search": True,
        "created_at": "2026-06-01T12:00:00+00:00", "updated_at": "2026-11-18T16:00:00+00:00",
        "media": [{"media_id": "med-88", "pdq": "f" * 16 + "0" * 16 + "a5" * 16, "quality": 92}]},
    "warden.platform.content.removed.v1": {"content_id": "chan-7731", "removed_at": "2026-12-01T08:00:00+00:00"},
}
