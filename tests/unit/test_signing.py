"""Signatures over RFC 8785 canonical JSON: what an authority signs is what intake verifies."""
import base64

import pytest

from warden.signing import canonical, decode_key, generate_keypair, sign, signed_bytes, verify


def test_canonical_json_is_rfc8785():
    assert canonical({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_signature_covers_everything_but_itself():
    keys = generate_keypair()
    data = {"request_id": "r", "signature": "ignored", "n": 1}
    signature = sign(signed_bytes(data), keys["private_key"])
    assert len(base64.b64decode(signature)) == 64
    assert verify(signed_bytes(dict(data, signature=signature)), signature, keys["public_key"])
    assert not verify(signed_bytes(dict(data, n=2)), signature, keys["public_key"])
    assert not verify(signed_bytes(data), signature, generate_keypair()["public_key"])
    assert not verify(signed_bytes(data), "not base64!", keys["public_key"])


def test_keys_are_raw_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(b"short").decode())
