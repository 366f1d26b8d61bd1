"""Warden's rules for an authority API signature, and the signer and verifier they wrap (no I/O)."""
from datetime import datetime, timedelta, timezone

import pytest

from warden.http_signatures import (
    HttpMessage,
    SignatureInput,
    SignatureRefused,
    check_signature_input,
    read_signature_input,
    sign_request,
    verify_signature,
)
from warden.signing import generate_keypair

from intake.authentication import signature_fingerprint
from intake.authority_view import decode_cursor, encode_cursor

AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
URL = "http://intake.example:8080/authority/v1/requests"
COURT = generate_keypair()


def signature_input(created: datetime | None = AT, covered=("@method", "@target-uri"), alg="ed25519"):
    return SignatureInput(keyid="fr-court", created=int(created.timestamp()) if created else None, alg=alg,
                          covered=covered)


@pytest.mark.parametrize("signed, has_body, refused", [
    (signature_input(), False, None),
    (signature_input(AT - timedelta(minutes=4, seconds=59)), False, None),
    (signature_input(AT - timedelta(minutes=5, seconds=1)), False, "stale_signature"),
    (signature_input(AT + timedelta(minutes=5, seconds=1)), False, "future_signature"),
    (signature_input(None), False, "missing_created"),
    (signature_input(alg="rsa-pss-sha512"), False, "unsupported_algorithm"),
    (signature_input(covered=("@method",)), False, "missing_component"),
    (signature_input(covered=("@target-uri",)), False, "missing_component"),
    (signature_input(), True, "missing_component"),  # a body needs content-digest covered
    (signature_input(covered=("@method", "@target-uri", "content-digest")), True, None),
])
def test_a_signature_must_be_fresh_ed25519_and_cover_method_target_and_body(signed, has_body, refused):
    if refused is None:
        check_signature_input(signed, has_body=has_body, at=AT)
    else:
        with pytest.raises(SignatureRefused) as caught:
            check_signature_input(signed, has_body=has_body, at=AT)
        assert caught.value.code == refused


def test_what_the_client_signs_the_server_verifies_and_nothing_else():
    body = b'{"request_id": "R-1"}'
    headers = {k.lower(): v for k, v in sign_request("POST", URL, body, "fr-court", COURT["private_key"]).items()}
    signed = read_signature_input(headers)
    assert signed.keyid == "fr-court" and signed.covered == ("@method", "@target-uri", "content-digest")
    check_signature_input(signed, has_body=True, at=datetime.now(timezone.utc))
    verify_signature(HttpMessage("POST", URL, headers), body, "fr-court", [generate_keypair()["public_key"],
                                                                           COURT["public_key"]])
    refusals = {}
    for name, message, content, keys in [
        ("other key", HttpMessage("POST", URL, headers), body, [generate_keypair()["public_key"]]),
        ("other body", HttpMessage("POST", URL, headers), b'{"request_id": "R-2"}', [COURT["public_key"]]),
        ("other method", HttpMessage("PUT", URL, headers), body, [COURT["public_key"]]),
        ("other target", HttpMessage("POST", URL + "/R-1", headers), body, [COURT["public_key"]]),
    ]:
        with pytest.raises(SignatureRefused) as caught:
            verify_signature(message, content, "fr-court", keys)
        refusals[name] = caught.value.code
    assert refusals == {"other key": "bad_signature", "other body": "digest_mismatch",
                        "other method": "bad_signature", "other target": "bad_signature"}


def test_two_identical_calls_carry_distinct_signatures():
    first = sign_request("GET", URL, None, "fr-court", COURT["private_key"], created=AT)
    second = sign_request("GET", URL, None, "fr-court", COURT["private_key"], created=AT)
    assert first["Signature"] != second["Signature"]


def test_the_replay_cache_keys_on_the_signature_bytes_not_its_unsigned_label():
    assert signature_fingerprint("warden=:AAEC:") == signature_fingerprint("other=:AAEC:")
    assert signature_fingerprint("warden=:AAEC:") != signature_fingerprint("warden=:AAED:")
    with pytest.raises(SignatureRefused):
        signature_fingerprint("a=:AAEC:, b=:AAEC:")


@pytest.mark.parametrize("headers, code", [
    ({}, "missing_signature"),
    ({"signature-input": 'warden=("@method");created=1', "signature": "warden=:AAEC:"}, "missing_keyid"),
    ({"signature-input": "not a dictionary ((", "signature": "warden=:AAEC:"}, "malformed_signature"),
    ({"signature-input": 'a=("@method");keyid="k", b=("@method");keyid="k"', "signature": "a=:AA:, b=:AA:"},
     "malformed_signature"),
])
def test_signature_input_is_read_strictly(headers, code):
    with pytest.raises(SignatureRefused) as caught:
        read_signature_input(headers)
    assert caught.value.code == code


def test_list_cursors_round_trip_and_foreign_ones_are_refused():
    assert decode_cursor(encode_cursor(AT, "R-1")) == (AT, "R-1")
    for foreign in ("", "bm90IGpzb24", "WzFd"):
        with pytest.raises(ValueError):
            decode_cursor(foreign)
