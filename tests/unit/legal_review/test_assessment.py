"""The assessment: outcome, scope, deadlines, reviewers, holds, derived from the rules."""
from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from legal_review.policy import DEFAULT_POLICY_FILE, current_policy, parse_policy
from legal_review.rules import add_months, assess

from tests.unit.legal_review.support import NOW, authority, earlier_hold, facts, request

POLICY = current_policy()
JUSTIFIED = dict(emergency=True, emergency_justification="Threat to kill a named person tonight")


def codes(assessment, outcome):
    return {r.code for r in assessment.results if r.outcome == outcome}


def test_valid_request_is_approved_with_a_ten_day_deadline():
    a = assess(facts(), POLICY)
    assert a.outcome == "approved" and a.flags == [] and a.approvals_required == 0
    assert a.kind == "disclosure" and a.granted_categories == ["ip_addresses", "phone_number"]
    assert a.deadline == NOW + timedelta(days=10)
    assert a.policy_version == POLICY.version
    assert [r.rule for r in a.results] == [spec.id for spec in POLICY.rules]


def test_non_grantable_categories_are_refused_and_the_rest_approved():
    a = assess(facts(request(data_categories=["message_content", "ip_addresses", "ip_addresses"])), POLICY)
    assert a.outcome == "approved"
    assert (a.granted_categories, a.refused_categories) == (["ip_addresses"], ["message_content"])


def test_period_is_narrowed_to_retention():
    a = assess(facts(request(period={"start": NOW - timedelta(days=380), "end": NOW - timedelta(days=20)})), POLICY)
    assert a.outcome == "approved"
    assert a.period.start == NOW - timedelta(days=365) and a.period.end == NOW - timedelta(days=20)


def test_subpoena_is_rejected_with_its_reason():
    a = assess(facts(request(instrument={"type": "subpoena"}), authority(country="US")), POLICY)
    assert a.outcome == "rejected" and "not_judicial_order" in codes(a, "failed")
    assert a.hold_until is None


def test_hard_failure_wins_over_flags():
    a = assess(facts(request(offense={"category": "hate_speech"}, instrument={"type": "subpoena"})), POLICY)
    assert a.outcome == "rejected"


@pytest.mark.parametrize("category", ["hate_speech", "defamation", "extremism_speech"])
def test_speech_goes_to_two_reviewers_with_a_supervisor(category):
    a = assess(facts(request(offense={"category": category})), POLICY)
    assert a.outcome == "pending_review" and a.flags == ["human_rights"]
    assert a.approvals_required == 2 and a.supervisor_required


def direct_for(country: str):
    """The default policy with `country` given the US's rules (an operator's choice)."""
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    us = next(j for j in raw["jurisdictions"]["countries"] if j["name"] == "US")
    raw["jurisdictions"]["countries"].append(dict(us, name=country, countries=[country]))
    return parse_policy(yaml.safe_dump(raw))


def test_high_risk_jurisdiction_needs_two_reviewers():
    a = assess(facts(auth=authority(country="RU")), direct_for("RU"))
    assert a.outcome == "pending_review" and a.flags == ["high_risk_jurisdiction"] and a.approvals_required == 2


@pytest.mark.parametrize("country, outcome, code", [
    ("FR", "approved", "direct_route"), ("US", "approved", "direct_route"), ("GB", "approved", "executive_agreement"),
    ("BR", "rejected", "mlat_required"), ("RU", "rejected", "mlat_required"),
])
def test_a_court_order_takes_its_jurisdiction_s_route(country, outcome, code):
    a = assess(facts(auth=authority(country=country)), POLICY)
    [route] = [r for r in a.results if r.rule == "jurisdiction.route"]
    assert (a.outcome, route.code) == (outcome, code)
    if code == "mlat_required":
        assert "mutual legal assistance" in route.message


def test_an_emergency_from_anywhere_is_accepted_directly_for_review():
    a = assess(facts(request(instrument={"type": "emergency_request"}, **JUSTIFIED), authority("police", "BR")),
               POLICY)
    assert a.outcome == "pending_review" and a.flags == ["emergency"]


def test_non_judicial_emergency_is_decided_first_by_one_reviewer_and_needs_confirmation():
    a = assess(facts(request(instrument={"type": "emergency_request"}, **JUSTIFIED), authority("police", "FR")), POLICY)
    assert a.outcome == "pending_review" and a.flags == ["emergency"]
    assert a.approvals_required == 1 and not a.supervisor_required
    assert a.deadline == NOW + timedelta(hours=8)
    assert a.confirmation_due == NOW + timedelta(hours=48)


def test_court_emergency_needs_no_confirmation():
    a = assess(facts(request(**JUSTIFIED)), POLICY)
    assert a.emergency and a.confirmation_due is None and a.approvals_required == 1


def test_emergency_in_high_risk_jurisdiction_still_needs_two():
    a = assess(facts(request(instrument={"type": "emergency_request"}, **JUSTIFIED), authority(country="RU")),
               POLICY)
    assert a.flags == ["emergency", "high_risk_jurisdiction"] and a.approvals_required == 2


def test_unknown_authority_goes_to_review():
    a = assess(facts(auth=None), POLICY)
    assert a.outcome == "pending_review" and a.flags == ["authority_unknown"] and a.approvals_required == 2


@pytest.mark.parametrize("country, days", [("FR", 60), ("DE", 60), ("US", 90), ("GB", 90)])
def test_preservation_is_a_hold_of_60_days_in_the_eu_90_elsewhere(country, days):
    a = assess(facts(request(instrument={"type": "preservation_request"}), authority(country=country)), POLICY)
    assert a.outcome == "approved" and a.kind == "preservation"
    assert a.hold_until == NOW + timedelta(days=days)


@pytest.mark.parametrize("country, days", [("FR", 30), ("US", 90)])
def test_preservation_extends_once_by_30_in_the_eu_90_elsewhere(country, days):
    earlier = earlier_hold(hold_until=NOW + timedelta(days=5))
    req = request(instrument={"type": "preservation_request"}, extends_request_id="REQ-0")
    a = assess(facts(req, authority(country=country), earlier), POLICY)
    assert a.outcome == "approved" and a.hold_until == earlier.hold_until + timedelta(days=days)


def test_add_months_clamps_to_month_end():
    assert add_months(NOW.replace(month=1, day=31), 1).day == 29  # 2024 is a leap year
    assert add_months(NOW, 12) == NOW.replace(year=2025)
