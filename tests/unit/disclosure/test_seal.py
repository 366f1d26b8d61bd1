"""Seal and open: what the service seals, only the authority's key opens, and any altered byte is refused."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from nacl.public import SealedBox
from nacl.signing import SigningKey

from disclosure.package import PADDING_BUCKET, seal_for_authority, sealed_bytes
from warden.cli.disclosure import PackageRefused, open_package
from warden.signing import canonical, decode_key, generate_keypair

PACKAGE = {
    "case_id": "c-1", "request_id": "REQ-1", "authority_id": "auth-1", "account_id": "acct-1",
    "period": {"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"},
    "generated_at": "2025-02-02T00:00:00Z",
    "nonce": base64.b64encode(bytes(range(32))).decode(),
    "phone_numbers": [{"phone_number": "+33612345002", "from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"}],
    "ip_addresses": [{"ip": "203.0.113.9", "first_seen": "2025-01-03T10:00:00Z",
                      "last_seen": "2025-01-09T10:00:00Z", "count": 4}],
}


@pytest.fixture(scope="module")
def keys():
    return {"authority": generate_keypair(), "platform": generate_keypair(), "other": generate_keypair()}


@pytest.fixture(scope="module")
def event(keys):
    sealed = seal_for_authority(PACKAGE, keys["authority"]["public_key"], keys["platform"]["private_key"])
    return {"case_id": "c-1", "request_id": "REQ-1", "authority_id": "auth-1", "account_id": "acct-1",
            "sealed": sealed.sealed, "sha256": sealed.sha256, "signature": sealed.signature}


def test_authority_opens_what_was_sealed_to_it(keys, event):
    opened = open_package(event, keys["authority"]["private_key"], keys["platform"]["public_key"])
    assert opened == PACKAGE
    assert canonical(opened) == canonical(PACKAGE)


def test_the_sealed_bytes_are_the_padded_canonical_package(keys, event):
    """Hash and signature cover exactly what is sealed: the canonical package with its padding."""
    private = SigningKey(decode_key(keys["authority"]["private_key"])).to_curve25519_private_key()
    body = SealedBox(private).decrypt(base64.b64decode(event["sealed"]))
    padded = json.loads(body)
    assert body == sealed_bytes(PACKAGE) == canonical(padded)
    assert len(body) % PADDING_BUCKET == 0 and set(padded["padding"]) == {" "}
    assert {k: v for k, v in padded.items() if k != "padding"} == PACKAGE
    assert hashlib.sha256(body).hexdigest() == event["sha256"]


def test_a_package_is_sealed_only_with_its_nonce_and_without_padding(keys):
    for package in ({k: v for k, v in PACKAGE.items() if k != "nonce"}, dict(PACKAGE, nonce=""),
                    dict(PACKAGE, nonce=base64.b64encode(bytes(16)).decode()), dict(PACKAGE, padding="")):
        with pytest.raises(ValueError):
            seal_for_authority(package, keys["authority"]["public_key"], keys["platform"]["private_key"])


def test_sealed_bytes_show_nothing_in_clear(event):
    raw = base64.b64decode(event["sealed"])
    assert b"+33612345002" not in raw and b"203.0.113.9" not in raw
    assert "+33612345002" not in json.dumps(event) and "203.0.113.9" not in json.dumps(event)


def test_no_other_key_opens_it(keys, event):
    with pytest.raises(PackageRefused, match="does not open"):
        open_package(event, keys["other"]["private_key"], keys["platform"]["public_key"])


def test_another_platform_key_does_not_verify(keys, event):
    with pytest.raises(PackageRefused, match="signature"):
        open_package(event, keys["authority"]["private_key"], keys["other"]["public_key"])


def test_every_altered_byte_of_the_seal_is_refused(keys, event):
    raw = base64.b64decode(event["sealed"])
    for i in range(len(raw)):
        altered = bytearray(raw)
        altered[i] ^= 0x01
        with pytest.raises(PackageRefused):
            open_package(dict(event, sealed=base64.b64encode(bytes(altered)).decode()),
                         keys["authority"]["private_key"], keys["platform"]["public_key"])


def test_altered_hash_or_signature_is_refused(keys, event):
    with pytest.raises(PackageRefused, match="sha256"):
        open_package(dict(event, sha256="0" * 64), keys["authority"]["private_key"], keys["platform"]["public_key"])
    signature = bytearray(base64.b64decode(event["signature"]))
    signature[0] ^= 0x80
    with pytest.raises(PackageRefused, match="signature"):
        open_package(dict(event, signature=base64.b64encode(bytes(signature)).decode()),
                     keys["authority"]["private_key"], keys["platform"]["public_key"])


def test_a_resealed_forgery_fails_the_platform_signature(keys, event):
    """Anyone can seal to the authority's public key; only the platform can sign."""
    forged = dict(PACKAGE, ip_addresses=[])
    resealed = seal_for_authority(forged, keys["authority"]["public_key"], keys["other"]["private_key"])
    with pytest.raises(PackageRefused, match="signature"):
        open_package(dict(event, sealed=resealed.sealed, sha256=resealed.sha256),
                     keys["authority"]["private_key"], keys["platform"]["public_key"])


def test_event_fields_must_match_the_sealed_package(keys, event):
    with pytest.raises(PackageRefused, match="account_id"):
        open_package(dict(event, account_id="acct-2"), keys["authority"]["private_key"],
                     keys["platform"]["public_key"])
