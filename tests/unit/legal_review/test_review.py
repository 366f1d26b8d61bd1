"""Who may decide a case and when a decision closes it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from warden.contract.events import Period

from legal_review.cases import Case
from legal_review.review import DecisionRequest, Reviewer, ReviewRefused, Vote, judge_vote, may_ask, resumed_deadline
from legal_review.rules import RuleResult

from tests.unit.legal_review.support import NOW, request

ALICE, BOB = Reviewer("alice", "reviewer"), Reviewer("bob", "reviewer")
CAROL = Reviewer("carol", "supervisor")
GRANTED = Period(start=NOW - timedelta(days=90), end=NOW - timedelta(days=1))


def case(status="pending_review", approvals=2, supervisor=False, flags=("high_risk_jurisdiction",)) -> Case:
    return Case(case_id="c-1", request_id="REQ-1", authority_id="auth-1", country="RU", received_at=NOW,
                deadline=NOW + timedelta(days=10), emergency=False, kind="disclosure", status=status,
                flags=list(flags), request=request(), results=[RuleResult(rule="r", outcome="passed", code="ok",
                                                                          message="ok")],
                granted_categories=["ip_addresses", "phone_number"], period=GRANTED, hold_until=None, extensions=0,
                approvals_required=approvals, supervisor_required=supervisor, confirmation_due=None,
                confirmed_by=None, policy_version="v", decided_at=None, decided_by=[], suspect_account_id=None)


def approve(**kw) -> DecisionRequest:
    return DecisionRequest(action="approve", reason="order is specific and proportionate", **kw)


def refused(exc_info) -> tuple[int, str]:
    return exc_info.value.status, exc_info.value.code


def test_first_approval_of_a_two_reviewer_case_waits_for_the_second():
    result = judge_vote(case(), [], ALICE, approve())
    assert result.final is None and result.approvers == ["alice"]


def test_second_distinct_reviewer_closes_it():
    result = judge_vote(case(), [Vote("alice", "reviewer", "approve")], BOB, approve())
    assert result.final == "approved" and result.approvers == ["alice", "bob"]


def test_same_reviewer_twice_is_forbidden():
    with pytest.raises(ReviewRefused) as exc:
        judge_vote(case(), [Vote("alice", "reviewer", "approve")], ALICE, approve())
    assert refused(exc) == (403, "same_reviewer")


def test_supervisor_flagged_case_needs_a_supervisor_among_the_approvers():
    flagged = case(supervisor=True, flags=("human_rights",))
    with pytest.raises(ReviewRefused) as exc:
        judge_vote(flagged, [Vote("alice", "reviewer", "approve")], BOB, approve())
    assert refused(exc) == (403, "supervisor_required")
    assert judge_vote(flagged, [Vote("alice", "reviewer", "approve")], CAROL, approve()).final == "approved"


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_closed_case_is_a_conflict(status):
    with pytest.raises(ReviewRefused) as exc:
        judge_vote(case(status=status), [], ALICE, approve())
    assert refused(exc) == (409, "case_closed")


def test_one_rejection_closes_the_case():
    result = judge_vote(case(), [], ALICE, DecisionRequest(action="reject", reason="speech, not crime"))
    assert result.final == "rejected"


def test_emergency_needs_one_reviewer():
    assert judge_vote(case(approvals=1, flags=("emergency",)), [], ALICE, approve()).final == "approved"


def test_narrowing_grants_fewer_categories_and_a_shorter_period():
    shorter = Period(start=GRANTED.start + timedelta(days=30), end=GRANTED.end)
    result = judge_vote(case(approvals=1), [], ALICE, DecisionRequest(
        action="narrow", reason="only the last two months", data_categories=["ip_addresses"], period=shorter))
    assert result.final == "approved" and result.categories == ["ip_addresses"] and result.period == shorter


@pytest.mark.parametrize("scope", [
    {"data_categories": ["ip_addresses", "message_content"]},
    {"data_categories": []},
    {"period": {"start": GRANTED.start - timedelta(days=1), "end": GRANTED.end}},
])
def test_narrowing_never_widens(scope):
    with pytest.raises(ReviewRefused) as exc:
        judge_vote(case(), [], ALICE, DecisionRequest(action="narrow", reason="narrower", **scope))
    assert refused(exc) == (422, "narrow_widens")


@pytest.mark.parametrize("body", [
    {"action": "approve", "reason": ""},
    {"action": "narrow", "reason": "no scope given"},
    {"action": "approve", "reason": "fine", "data_categories": ["ip_addresses"]},
])
def test_invalid_decisions_are_refused_by_the_model(body):
    with pytest.raises(ValueError):
        DecisionRequest.model_validate(body)


def test_a_case_waiting_for_the_authoritys_answer_takes_no_vote_and_no_second_question():
    waiting = case(status="needs_clarification")
    with pytest.raises(ReviewRefused) as vote:
        judge_vote(waiting, [], ALICE, approve())
    with pytest.raises(ReviewRefused) as question:
        may_ask(waiting, BOB)
    assert refused(vote) == refused(question) == (409, "awaiting_clarification")


@pytest.mark.parametrize("status", ["approved", "rejected", "withdrawn"])
def test_a_closed_case_takes_no_question(status):
    with pytest.raises(ReviewRefused) as question:
        may_ask(case(status=status), ALICE)
    assert refused(question) == (409, "case_closed")
    may_ask(case(), ALICE)  # an open case does


def test_the_deadline_moves_by_the_time_the_clock_was_paused():
    deadline = NOW + timedelta(hours=72)
    asked, answered = NOW + timedelta(hours=10), NOW + timedelta(hours=40)
    assert resumed_deadline(deadline, asked, answered) == deadline + timedelta(hours=30)
    assert resumed_deadline(deadline, None, answered) == deadline  # never paused
    assert resumed_deadline(deadline, answered, asked) == deadline  # a clock running backwards moves nothing
