"""Every policy rule, passing and failing, with its reason code (table-driven)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from legal_review.policy import current_policy
from legal_review.rules import RULES, SuspectHold

from tests.unit.legal_review.support import NOW, authority, earlier_hold, facts, request

POLICY = current_policy()
EXT = "REQ-0"


def suspect_hold(authority_id: str = "auth-1", started_at=NOW, days: int = 60) -> SuspectHold:
    return SuspectHold(authority_id=authority_id, started_at=started_at, hold_until=started_at + timedelta(days=days))


# (rule id, facts, expected outcome, expected reason code)
CASES = [
    # authority.registered
    ("authority.registered", facts(), "passed", "authority_active"),
    ("authority.registered", facts(auth=authority(status="revoked")), "failed", "authority_revoked"),
    ("authority.registered", facts(auth=None), "flagged", "authority_unknown"),
    # instrument.judicial
    ("instrument.judicial", facts(), "passed", "judicial_instrument"),
    ("instrument.judicial", facts(request(instrument={"type": "search_warrant"})), "passed", "judicial_instrument"),
    ("instrument.judicial", facts(request(instrument={"type": "subpoena"})), "failed", "not_judicial_order"),
    # authority.competent
    ("authority.competent", facts(), "passed", "issuer_competent"),
    ("authority.competent", facts(request(instrument={"type": "production_order"}), authority("prosecutor", "FR")),
     "passed", "issuer_competent"),
    ("authority.competent", facts(request(instrument={"type": "production_order"}), authority("prosecutor", "US")),
     "failed", "issuer_not_competent"),
    ("authority.competent", facts(request(instrument={"type": "court_order"}), authority("prosecutor", "FR")),
     "failed", "issuer_not_competent"),
    ("authority.competent", facts(request(), authority("police", "FR")), "failed", "issuer_not_competent"),
    ("authority.competent", facts(request(instrument={"type": "preservation_request"}), authority("police", "US")),
     "passed", "issuer_competent"),
    ("authority.competent", facts(request(instrument={"type": "preservation_request"}), authority("police", "FR")),
     "failed", "issuer_not_competent"),
    ("authority.competent", facts(request(instrument={"type": "emergency_request"}), authority("police", "FR")),
     "passed", "issuer_competent"),
    ("authority.competent", facts(request(instrument={"type": "subpoena"}), authority("court", "US")),
     "failed", "issuer_not_competent"),
    ("authority.competent", facts(auth=None), "flagged", "issuer_unverifiable"),
    # instrument.issued
    ("instrument.issued", facts(), "passed", "issued"),
    ("instrument.issued", facts(request(instrument={"issued_at": NOW + timedelta(minutes=2)})), "passed", "issued"),
    ("instrument.issued", facts(request(instrument={"issued_at": NOW + timedelta(days=1)})),
     "failed", "issued_in_future"),
    # instrument.in_force
    ("instrument.in_force", facts(), "passed", "in_force"),
    ("instrument.in_force", facts(request(instrument={"expires_at": None})), "passed", "in_force"),
    ("instrument.in_force", facts(request(instrument={"expires_at": NOW - timedelta(seconds=1)})),
     "failed", "instrument_expired"),
    # offense.criminal_tos
    ("offense.criminal_tos", facts(), "passed", "criminal_offense"),
    ("offense.criminal_tos", facts(request(offense={"category": "hate_speech"})), "passed", "criminal_offense"),
    ("offense.criminal_tos", facts(request(offense={"category": "other"})), "flagged", "offense_unlisted"),
    # offense.speech_review
    ("offense.speech_review", facts(), "passed", "not_speech"),
    *[("offense.speech_review", facts(request(offense={"category": c})), "flagged", "speech_offense")
      for c in ("hate_speech", "defamation", "extremism_speech")],
    # data.grantable
    ("data.grantable", facts(), "passed", "categories_granted"),
    ("data.grantable", facts(request(data_categories=["ip_addresses", "message_content"])),
     "passed", "categories_narrowed"),
    ("data.grantable", facts(request(data_categories=["message_content", "contacts"])), "failed", "nothing_grantable"),
    # period.well_formed
    ("period.well_formed", facts(), "passed", "period_ok"),
    ("period.well_formed", facts(request(period={"start": NOW - timedelta(days=1), "end": NOW - timedelta(days=2)})),
     "failed", "period_malformed"),
    ("period.well_formed", facts(request(period={"start": NOW + timedelta(days=1), "end": NOW + timedelta(days=2)})),
     "failed", "period_in_future"),
    # period.max_length
    ("period.max_length", facts(request(period={"start": NOW - timedelta(days=366), "end": NOW - timedelta(days=1)})),
     "passed", "period_within_limit"),
    ("period.max_length", facts(request(period={"start": NOW - timedelta(days=368), "end": NOW})),
     "failed", "period_too_long"),
    # period.retention
    ("period.retention", facts(), "passed", "period_in_retention"),
    ("period.retention", facts(request(period={"start": NOW - timedelta(days=400), "end": NOW - timedelta(days=100)})),
     "passed", "period_narrowed"),
    ("period.retention", facts(request(period={"start": NOW - timedelta(days=800), "end": NOW - timedelta(days=700)})),
     "failed", "period_outside_retention"),
    # jurisdiction.route
    ("jurisdiction.route", facts(), "passed", "direct_route"),
    ("jurisdiction.route", facts(auth=authority(country="GB")), "passed", "executive_agreement"),
    ("jurisdiction.route", facts(auth=authority(country="IN")), "failed", "mlat_required"),
    ("jurisdiction.route", facts(request(instrument={"type": "emergency_request"}), authority("police", "IN")),
     "passed", "direct_exception"),
    ("jurisdiction.route", facts(auth=None), "flagged", "route_unknown"),
    # jurisdiction.high_risk
    ("jurisdiction.high_risk", facts(), "passed", "jurisdiction_ok"),
    ("jurisdiction.high_risk", facts(auth=authority(country="RU")), "flagged", "high_risk_jurisdiction"),
    ("jurisdiction.high_risk", facts(auth=None), "flagged", "jurisdiction_unknown"),
    # emergency.justified
    ("emergency.justified", facts(), "passed", "not_emergency"),
    ("emergency.justified", facts(request(emergency=True, emergency_justification="Kidnapping in progress")),
     "flagged", "emergency"),
    ("emergency.justified", facts(request(instrument={"type": "emergency_request"},
                                          emergency_justification="Bomb threat")), "flagged", "emergency"),
    ("emergency.justified", facts(request(emergency=True, emergency_justification="  ")),
     "failed", "emergency_unjustified"),
    # preservation.hold
    ("preservation.hold", facts(), "passed", "not_preservation"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"})), "passed", "hold_granted"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold()), "passed", "hold_extended"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT)),
     "failed", "extension_target_unknown"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(extensions=1)), "failed", "extension_exhausted"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(kind="disclosure")), "failed", "extension_target_not_held"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(status="rejected")), "failed", "extension_target_not_held"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(hold_until=NOW - timedelta(days=1))),
     "failed", "extension_target_expired"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(suspect_key="0" * 64)), "failed", "extension_other_suspect"),
    # An extension of an extension: the chain already used its one extension.
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}, extends_request_id=EXT),
                                earlier=earlier_hold(chain_extensions=1)), "failed", "extension_exhausted"),
    # A new request while this authority's hold chain has run its 60 + 30 days (EU).
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}),
                                holds=(suspect_hold(started_at=NOW - timedelta(days=90)),)),
     "failed", "hold_limit_reached"),
    ("preservation.hold", facts(request(instrument={"type": "preservation_request"}),
                                holds=(suspect_hold(authority_id="other", started_at=NOW - timedelta(days=90)),)),
     "passed", "hold_granted"),
    # period.retention, reaching back through a hold on the suspect
    ("period.retention", facts(request(period={"start": NOW - timedelta(days=400), "end": NOW - timedelta(days=380)}),
                               holds=(suspect_hold(started_at=NOW - timedelta(days=50)),)),
     "passed", "period_within_hold"),
    # notice.jurisdiction
    ("notice.jurisdiction", facts(), "passed", "notice_by_authority"),
    ("notice.jurisdiction", facts(auth=authority(country="US")), "passed", "notice_by_platform"),
    ("notice.jurisdiction", facts(auth=None), "flagged", "notice_jurisdiction_unknown"),
    # nondisclosure.bounded
    ("nondisclosure.bounded", facts(), "passed", "no_nondisclosure"),
    ("nondisclosure.bounded", facts(request(nondisclosure_until=(NOW + timedelta(days=180)).date())),
     "passed", "nondisclosure_bounded"),
    ("nondisclosure.bounded", facts(request(nondisclosure_until=date(9999, 12, 31))),
     "flagged", "nondisclosure_too_far"),
]



@pytest.mark.parametrize("rule_id, the_facts, outcome, code", CASES,
                         ids=[f"{c[0]}:{c[3]}:{i}" for i, c in enumerate(CASES)])
def test_rule(rule_id, the_facts, outcome, code):
    result = RULES[rule_id](the_facts, POLICY)
    assert (result.rule, result.outcome, result.code) == (rule_id, outcome, code), result.message
    assert result.message


def test_every_rule_is_covered_passing_and_not_passing():
    covered = {(rule, outcome == "passed") for rule, _, outcome, _ in CASES}
    assert covered == {(rule, ok) for rule in RULES for ok in (True, False)}


def test_offense_outside_every_list_fails():
    narrow = POLICY.model_copy(update={"offenses": POLICY.offenses.model_copy(update={"criminal": ["terrorism"]})})
    result = RULES["offense.criminal_tos"](facts(), narrow)
    assert (result.outcome, result.code) == ("failed", "offense_not_covered")


def test_refused_categories_are_named():
    result = RULES["data.grantable"](facts(request(data_categories=["ip_addresses", "message_content"])), POLICY)
    assert "message_content" in result.message and "refused" in result.message


def test_flags_name_the_human_rights_concern():
    result = RULES["offense.speech_review"](facts(request(offense={"category": "defamation"})), POLICY)
    assert result.flag == "human_rights"
