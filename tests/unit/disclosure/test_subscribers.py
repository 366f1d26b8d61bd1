"""The subscriber store's pure rules: intervals, resolution, notices, masking."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from disclosure.package import mask_phone_number
from disclosure.subscribers import (
    Change, Held, held_intervals, holders_during, latest_per_account, normalise_ip, notice_due_at, resolve_account, thin_changes,
)
from warden.contract.envelope import EventRejected

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def test_change_points_become_intervals_whatever_their_order():
    changes = [Change("a", at(10), "+2"), Change("a", at(0), "+1"), Change("a", at(5), "+1"),
               Change("a", at(20), None), Change("a", at(30), "+3")]
    assert held_intervals(changes) == [
        Held("a", "+1", at(0), at(10)), Held("a", "+2", at(10), at(20)), Held("a", "+3", at(30), None)]


def test_an_identifier_designates_the_accounts_that_held_it_at_some_instant_of_the_period():
    changes = [Change("a", at(0), "+1"), Change("a", at(10), "+2"),  # a: +1 over [0, 10)
               Change("b", at(10), "+1"), Change("b", at(15), "+1"), Change("b", at(20), None),  # b: [10, 20)
               Change("c", at(30), "+1")]  # c: from 30 on
    assert holders_during(changes, "+1", at(5), at(12)) == {"a", "b"}
    assert holders_during(changes, "+1", at(10), at(10)) == {"b"}  # a's interval ends as b's starts
    assert holders_during(changes, "+1", at(20), at(29)) == set()
    assert holders_during(changes, "+1", at(40), at(50)) == {"c"}
    assert holders_during(changes, "+2", at(0), at(9)) == set() and holders_during(changes, "+2", at(9), at(10)) == {"a"}


def test_resolution_needs_every_identifier_to_agree():
    assert resolve_account({"account_id": {"a"}, "phone_number": {"a", "b"}}) == ("a", "")
    assert resolve_account({"phone_number": {"a", "b"}}) == (None, "suspect_ambiguous")
    assert resolve_account({"account_id": {"a"}, "username": {"b"}}) == (None, "suspect_not_found")
    assert resolve_account({"account_id": set()}) == (None, "suspect_not_found")


def test_notice_is_due_at_once_or_after_the_nondisclosure_date():
    assert notice_due_at(at(0), None) == at(0)
    assert notice_due_at(at(0), date(2025, 3, 1)) == datetime(2025, 3, 2, tzinfo=timezone.utc)
    assert notice_due_at(at(100), date(2025, 3, 1)) == at(100)


def test_a_notice_waits_for_not_before_and_never_overflows():
    assert notice_due_at(at(0), None, at(2)) == at(2)
    assert notice_due_at(at(0), date(2025, 3, 1), at(2)) == max(at(2), datetime(2025, 3, 2, tzinfo=timezone.utc))
    assert notice_due_at(at(0), date.max) == datetime.max.replace(tzinfo=timezone.utc)
    assert notice_due_at(at(0), date(9999, 12, 30)) == datetime(9999, 12, 31, tzinfo=timezone.utc)


def test_masked_numbers_keep_only_the_country_calling_code():
    assert mask_phone_number("+33612345002") == "+33 ***"
    assert mask_phone_number("+447700900123") == "+44 ***"
    assert mask_phone_number("+12025550123") == "+1 ***"
    assert mask_phone_number("+35312345678") == "+353 ***"
    # Neither digits nor length: every number with the code masks alike.
    assert {mask_phone_number("+33" + "7" * n) for n in range(1, 13)} == {"+33 ***"}
    assert mask_phone_number("+999123") == mask_phone_number("0612345002") == "***"


def test_ips_are_normalised_and_nonsense_refused_without_echoing_it():
    assert normalise_ip("2001:DB8:0::1") == "2001:db8::1"
    with pytest.raises(EventRejected) as caught:
        normalise_ip("10.0.0.999")
    assert "999" not in caught.value.error


def test_a_batch_of_account_updates_folds_to_what_applying_them_one_by_one_leaves():
    updates = [("a", at(5), "x"), ("b", at(1), "p"), ("a", at(3), "older"), ("a", at(5), "same time, later")]
    assert sorted(latest_per_account(updates)) == [("a", at(5), "same time, later"), ("b", at(1), "p")]


def test_a_batch_of_change_points_keeps_the_intervals_they_derive():
    changes = [Change("a", at(10), "+2"), Change("a", at(0), "+1"), Change("a", at(5), "+1"),
               Change("b", at(1), "+1"), Change("a", at(20), "+2"), Change("a", at(30), None)]
    thinned = thin_changes(changes)
    assert Change("a", at(5), "+1") not in thinned and Change("a", at(20), "+2") not in thinned
    assert held_intervals(thinned) == held_intervals(changes)
