"""Intake's pure rules: identifier normalisation, stable case ids, content fingerprints."""
import pytest

from intake.rules import fingerprint
from warden.identifiers import case_id_for, normalise_phone_number, normalise_suspect, normalise_username
from warden.contract.envelope import EventRejected
from warden.contract.events import Suspect


@pytest.mark.parametrize("raw, e164", [
    ("+33 6 12 34 56 78", "+33612345678"),
    ("+1 (415) 555-0100", "+14155550100"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+33612345678", "+33612345678"),
])
def test_phone_numbers_become_e164(raw, e164):
    assert normalise_phone_number(raw) == e164


@pytest.mark.parametrize("raw", ["06 12 34 56 78", "+0", "not a number", "+33 1",
                                 # letters are not keypad digits; an extension is not part of E.164
                                 "+33 6 2222 2ABC", "+1 800 FLOWERS", "+33 6 12 34 56 78 ext. 12",
                                 "+33612345678;ext=12", "+33612345678#12", "+33612345678,12"])
def test_unusable_phone_numbers_are_rejected_without_echoing_them(raw):
    with pytest.raises(EventRejected) as caught:
        normalise_phone_number(raw)
    assert caught.value.reason == "invalid_data"
    assert raw not in caught.value.error


@pytest.mark.parametrize("raw, normal", [("@Dealer_42", "dealer_42"), ("  DEALER ", "dealer"), ("straße", "strasse")])
def test_usernames_lose_the_at_sign_and_case(raw, normal):
    assert normalise_username(raw) == normal


def test_normalise_suspect_keeps_absent_identifiers_absent():
    suspect = normalise_suspect(Suspect(account_id=" 42 ", username="@X"))
    assert suspect == Suspect(account_id="42", username="x", phone_number=None)


def test_case_id_is_stable_and_distinct_per_request():
    assert case_id_for("a", "r1") == case_id_for("a", "r1")
    assert case_id_for("a", "r1") != case_id_for("a", "r2")
    assert case_id_for("a", "r1") != case_id_for("b", "r1")


def test_fingerprint_ignores_key_order_but_not_content():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
