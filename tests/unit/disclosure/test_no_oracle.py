"""No oracle in the clear: nothing `legal.disclosures.issued` shows tells the true number from a guess.

An outsider reads the event of a phone-only disclosure: ids, period, generated_at,
`redacted`, `sha256`, `signature`, `sealed`, and knows the code. The package holds
little else than the number, so for every guessed number the outsider rebuilds the
package from the event and checks it against `sha256` and the platform's
`signature`, and computes the redacted view and the sealed length the guess would
give. Every guess must get the answer the true number gets: no match (the nonce is
unknown outside), the event's redacted view, the event's sealed length.
"""
from __future__ import annotations

import base64
import hashlib
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from disclosure.package import (
    NONCE_BYTES, PADDING_BUCKET, Session, build_package, new_nonce, redact, seal_for_authority, sealed_bytes,
)
from disclosure.subscribers import Change
from warden.contract.events import DisclosureIssued, RequestApproved
from warden.signing import decode_key, generate_keypair

AUTHORITY, PLATFORM, OUTSIDER = generate_keypair(), generate_keypair(), generate_keypair()
PLATFORM_KEY = VerifyKey(decode_key(PLATFORM["public_key"]))
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2025, 3, 31, 12, 30, tzinfo=timezone.utc)
GENERATED_AT = datetime(2025, 4, 2, 10, 0, 0, 123456, tzinfo=timezone.utc)


def decision(case_id: str, request_id: str, authority_id: str, period: dict, categories: list[str]
             ) -> RequestApproved:
    # The suspect as the request named them is not in the package: any will do.
    return RequestApproved(
        case_id=case_id, request_id=request_id, authority_id=authority_id, suspect={"username": "suspect"},
        kind="disclosure", data_categories=categories, period=period, policy_rules=[], decided_by=["policy"])


def held_over_the_period(account_id: str, number: str, start: datetime) -> list[Change]:
    # Held since before the period: `from`/`to` are the period's bounds, which the outsider knows.
    return [Change(account_id, start - timedelta(days=30), number)]


def issue(account_id: str, number: str, case_id: str = "case-7f3a", request_id: str = "REQ-2025-0042",
          authority_id: str = "fr-tj-lyon", generated_at: datetime = GENERATED_AT) -> dict:
    """The clear event of a phone-only disclosure of `number`, as disclosure's handler makes it."""
    period = {"start": START, "end": END}
    package = build_package(decision(case_id, request_id, authority_id, period, ["phone_number"]),
                            account_id, held_over_the_period(account_id, number, START), [], generated_at,
                            new_nonce())
    sealed = seal_for_authority(package, AUTHORITY["public_key"], PLATFORM["private_key"])
    return DisclosureIssued(
        case_id=case_id, request_id=request_id, authority_id=authority_id, account_id=account_id,
        period=period, generated_at=generated_at, redacted=redact(package), sealed=sealed.sealed,
        sha256=sealed.sha256, signature=sealed.signature).model_dump(mode="json")


def outsider_answer(event: dict, guess: str) -> tuple[bool, bool, dict, int]:
    """What an outsider learns of `guess` from the event: hash match, signature match, view, sealed length."""
    start = datetime.fromisoformat(event["period"]["start"])
    package = build_package(
        decision(event["case_id"], event["request_id"], event["authority_id"], event["period"], ["phone_number"]),
        event["account_id"], held_over_the_period(event["account_id"], guess, start), [],
        datetime.fromisoformat(event["generated_at"]), bytes(NONCE_BYTES))
    body = sealed_bytes(package)
    try:
        PLATFORM_KEY.verify(body, base64.b64decode(event["signature"]))
        signed = True
    except BadSignatureError:
        signed = False
    # Sealing is open to anyone (the authority's key is public); only the length of it matters here.
    sealed_length = len(seal_for_authority(package, AUTHORITY["public_key"], OUTSIDER["private_key"]).sealed)
    return hashlib.sha256(body).hexdigest() == event["sha256"], signed, redact(package).model_dump(), sealed_length


def assert_no_guess_stands_out(event: dict, true_number: str, guesses: list[str]) -> None:
    expected = (False, False, event["redacted"], len(event["sealed"]))
    assert outsider_answer(event, true_number) == expected
    for guess in guesses:
        assert outsider_answer(event, guess) == expected, guess


def numbers(rng: random.Random, country: str, count: int) -> list[str]:
    """`count` numbers with this country calling code, of every E.164 length from 8 to 15 digits."""
    out = []
    for i in range(count):
        digits = 8 + i % 8
        out.append("+" + country + "".join(str(rng.randrange(10)) for _ in range(digits - len(country))))
    return out


def test_five_thousand_guesses_answer_as_the_true_number_at_every_offset_of_a_padding_bucket():
    """5,120 guesses (+33, 8 to 15 digits) against 256 events: account ids one byte longer each
    time, so the package's length meets every offset of a padding bucket, and padding that only
    rounded up to the bucket would let guesses near a boundary stand out."""
    rng = random.Random(16)
    for extra in range(PADDING_BUCKET):
        true_number = "+3361234" + "".join(str(rng.randrange(10)) for _ in range(4))
        event = issue("acct-" + "x" * extra, true_number)
        assert event["redacted"]["phone_numbers"] == ["+33 ***"]
        assert_no_guess_stands_out(event, true_number, numbers(rng, "33", 20))


def test_each_package_gets_its_own_nonce():
    first, second = issue("acct-1", "+33612345002"), issue("acct-1", "+33612345002")
    assert first["sha256"] != second["sha256"] and first["signature"] != second["signature"]
    assert len(first["sealed"]) == len(second["sealed"])
    with pytest.raises(ValueError, match="nonce"):
        build_package(decision("c", "r", "auth", {"start": START, "end": END}, ["phone_number"]), "a", [], [],
                      GENERATED_AT, bytes(16))


identifiers = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=300)


@settings(max_examples=40, deadline=None)
@given(country=st.sampled_from(["1", "7", "33", "44", "49", "86", "353", "880"]),
       national=st.integers(min_value=0, max_value=10**14 - 1), true_digits=st.integers(min_value=8, max_value=15),
       case_id=identifiers, request_id=identifiers, authority_id=identifiers, account_id=identifiers,
       microseconds=st.sampled_from([0, 1, 123456]), seed=st.integers(min_value=0, max_value=2**32))
def test_no_guess_stands_out_whatever_the_ids_country_and_length(country, national, true_digits, case_id,
                                                                 request_id, authority_id, account_id,
                                                                 microseconds, seed):
    true_number = "+" + country + str(national).zfill(14)[:true_digits - len(country)]
    event = issue(account_id, true_number, case_id, request_id, authority_id,
                  GENERATED_AT.replace(microsecond=microseconds))
    assert event["redacted"]["phone_numbers"] == [f"+{country} ***"]
    assert_no_guess_stands_out(event, true_number, numbers(random.Random(seed), country, 120))


def test_sealed_length_follows_only_from_what_the_event_shows():
    """Each secret value at its narrowest or at its widest (number, dates of holding, address,
    count, dates of sessions), at every offset of a padding bucket: the same sealed length."""
    narrow_phone = [Change("a", START - timedelta(days=1), "+1201555")]
    wide_phone = [Change("a", START + timedelta(microseconds=1), "+880123456789012"),
                  Change("a", END - timedelta(microseconds=1), None)]
    narrow_ip = [Session("a", "1.2.3.4", START)]
    wide_ip = [Session("a", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", START + timedelta(microseconds=1))] * 12_345
    grant = decision("c", "r", "auth", {"start": START, "end": END}, ["phone_number", "ip_addresses"])
    packages = [build_package(grant, "a", phones, sessions, GENERATED_AT, bytes(NONCE_BYTES))
                for phones, sessions in ((narrow_phone, narrow_ip), (wide_phone, wide_ip))]
    assert packages[0] != packages[1]
    for extra in range(PADDING_BUCKET):
        lengths = {len(sealed_bytes(dict(package, authority_id="x" * extra))) for package in packages}
        assert len(lengths) == 1 and lengths.pop() % PADDING_BUCKET == 0
