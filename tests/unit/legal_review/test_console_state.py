"""What the reviewers' console shows of a case's time and votes, and who may act on a taken case (pure rules)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from warden.keys import key_id
from warden.signing import generate_keypair

from legal_review.console.facts import KeyRecord, provenance
from legal_review.review import Hold, Reviewer, ReviewRefused, Vote, countdown, four_eyes, may_act_on_held

from tests.support.requests import request_data, signed
from tests.unit.legal_review.test_review import case

AT = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("left, text, overdue", [
    (timedelta(hours=3, minutes=12, seconds=40), "3 h 12 min left", False),
    (timedelta(hours=2), "2 h left", False),
    (timedelta(minutes=9), "9 min left", False),
    (timedelta(days=2, hours=5, minutes=3), "2 d 5 h left", False),
    (-timedelta(hours=2), "overdue by 2 h", True),
    (-timedelta(minutes=1, seconds=30), "overdue by 1 min", True),
])
def test_countdown_reads_as_time_left_or_overdue(left, text, overdue):
    clock = countdown(AT + left, AT)
    assert (clock.text, clock.overdue, clock.paused) == (text, overdue, False)


def test_a_paused_clock_stands_where_the_question_was_asked():
    asked = AT - timedelta(hours=10)
    clock = countdown(asked + timedelta(hours=4), AT, paused_at=asked)  # 4 h were left when asked
    assert (clock.text, clock.overdue, clock.paused) == ("clock paused: 4 h left", False, True)


def test_four_eyes_counts_approvals_of_distinct_reviewers_and_the_missing_supervisor():
    flagged = case(approvals=2, supervisor=True)
    eyes = four_eyes(flagged, [Vote("alice", "reviewer", "approve")])
    assert (eyes.missing, eyes.supervisor_missing) == (1, True)
    assert [v.reviewer for v in eyes.approvers] == ["alice"] and eyes.voted("alice") and not eyes.voted("bob")
    done = four_eyes(flagged, [Vote("alice", "reviewer", "approve"), Vote("sam", "supervisor", "narrow")])
    assert (done.missing, done.supervisor_missing) == (0, False)
    plain = four_eyes(case(approvals=2, supervisor=False), [])
    assert (plain.missing, plain.supervisor_missing) == (2, False)


def test_a_taken_case_is_decided_by_its_holder_only_until_the_hold_runs_out():
    hold = Hold("alice", AT - timedelta(minutes=5), AT + timedelta(minutes=25))
    may_act_on_held(hold, Reviewer("alice", "reviewer"), AT)
    may_act_on_held(None, Reviewer("bob", "reviewer"), AT)
    with pytest.raises(ReviewRefused) as refused:
        may_act_on_held(hold, Reviewer("bob", "supervisor"), AT)
    assert (refused.value.status, refused.value.code) == (409, "held_by_another")
    assert "alice" in refused.value.message
    may_act_on_held(hold, Reviewer("bob", "reviewer"), AT + timedelta(minutes=26))  # ran out


def test_the_signed_request_is_verified_again_and_a_changed_one_is_shown_as_not_verifying():
    keys = generate_keypair()
    authority = {"authority_id": "auth-1", "private_key": keys["private_key"]}
    submitted = signed(request_data(authority), keys["private_key"])
    amendment = signed({"request_id": submitted["request_id"], "authority_id": "auth-1", "clarification_id": "c1",
                        "answer": "IP only", "data_categories": ["ip_addresses"]}, keys["private_key"])
    c = case()
    c.submitted, c.authority_key, c.amendments = submitted, keys["public_key"], [amendment]
    pinned = [KeyRecord(key_id(keys["public_key"]), AT, None, True)]
    shown = provenance(c, pinned)
    assert shown.key_id == key_id(keys["public_key"]) and shown.key_registered and shown.key_revoked_at is None
    assert shown.request.verifies and [a.verifies for a in shown.amendments] == [True]
    assert '"signature"' in shown.request.text and submitted["request_id"] in shown.request.text

    c.submitted = dict(submitted, data_categories=["ip_addresses", "message_content"])  # altered after signing
    c.amendments = [dict(amendment, answer="everything")]
    revoked = [KeyRecord(key_id(keys["public_key"]), AT, AT + timedelta(days=1), True)]
    altered = provenance(c, revoked)
    assert not altered.request.verifies and [a.verifies for a in altered.amendments] == [False]
    assert altered.key_revoked_at == AT + timedelta(days=1)
    assert not provenance(c, []).key_registered
