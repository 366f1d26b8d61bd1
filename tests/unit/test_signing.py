"""Signatures over RFC 8785 canonical JSON: what an authority signs is what intake verifies."""
import base64

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.signing import canonical, decode_key, generate_keypair, sign, signed_bytes, verify

ASCII_KEYS = st.text(st.characters(max_codepoint=127), max_size=6)
SCALARS = (st.none() | st.booleans() | st.text() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1))
# What Warden signs and hashes: canonical() writes these itself (the fast path) ...
PLAIN = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ASCII_KEYS, inner, max_size=4),
                     max_leaves=25)
# ... and anything else JSON can hold, which it hands to rfc8785.
ANY_JSON = st.recursive(SCALARS | st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                        max_leaves=25)


def rfc8785_or_error(document):
    try:
        return rfc8785.dumps(document)
    except Exception as exc:  # noqa: BLE001 - the error's type is what is compared
        return type(exc)


def test_canonical_json_is_rfc8785():
    assert canonical({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@settings(max_examples=400, deadline=None)
@given(PLAIN)
def test_the_fast_path_writes_what_rfc8785_writes(document):
    assert canonical(document) == rfc8785.dumps(document)


@settings(max_examples=300, deadline=None)
@given(ANY_JSON)
def test_any_json_document_is_canonical_as_rfc8785_makes_it(document):
    expected = rfc8785_or_error(document)
    if isinstance(expected, bytes):
        assert canonical(document) == expected
    else:  # a number JSON cannot carry exactly: refused the same way
        with pytest.raises(expected):
            canonical(document)


def test_escapes_and_key_order_match_rfc8785_where_they_could_differ():
    tricky = "".join(map(chr, range(0x20))) + "\x7f \u2028 \u2029 \" \\ / é 😀 \ufeff"
    document = {"b": tricky, "B": [True, None, 0, -(2**53) + 1], "_": {"": "", "a\x01": 2**53 - 1}}
    assert canonical(document) == rfc8785.dumps(document)
    # keys beyond the BMP sort by UTF-16 units in RFC 8785, not by code point
    assert canonical({"\ufb33": 1, "\U0001f600": 2}) == rfc8785.dumps({"\ufb33": 1, "\U0001f600": 2})
    assert canonical({"x": 1.5}) == b'{"x":1.5}' and canonical({"x": 1.0}) == b'{"x":1}'


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
