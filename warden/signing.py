"""Ed25519 signatures over RFC 8785 canonical JSON, as authorities and the platform use them."""
from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


# JSON numbers are IEEE doubles in RFC 8785: integers beyond this are not exact there.
_EXACT_INTEGERS = 2**53 - 1


def canonical(document: Any) -> bytes:
    """RFC 8785 canonical JSON of `document`.

    rfc8785 serialises in pure Python (~120 µs for a disclosure package). For the
    documents Warden signs and hashes (ASCII keys, strings, exact integers, booleans,
    nulls: no floats) orjson writes the very same bytes, ten times faster than even the
    standard library's encoder: the same escapes (two-character ones, else lowercase
    \\u00xx for controls, nothing else escaped), and ASCII keys sort the same by code
    point as by UTF-16 unit. Any other document goes to rfc8785, and so does a string
    orjson refuses (a lone surrogate: rfc8785 says what is wrong with it).
    tests/unit/test_signing.py checks both agree.
    """
    if _plain(document):
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return rfc8785.dumps(document)


def _plain(value: Any) -> bool:
    """Only str, bool, None, exact int, and lists and dicts of them (ASCII keys); no recursion, since
    this runs over every document signed or hashed."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                if type(member) is not str and member is not None:
                    stack.append(member)
        elif kind is list:
            stack.extend(item)
        elif kind is int:
            if not -_EXACT_INTEGERS <= item <= _EXACT_INTEGERS:
                return False
        elif not (kind is str or kind is bool or item is None):
            return False
    return True


def signed_bytes(request_data: dict[str, Any]) -> bytes:
    """What an authority signs: the canonical JSON of `data` without `signature`."""
    return canonical({k: v for k, v in request_data.items() if k != "signature"})


def generate_keypair() -> dict[str, str]:
    key = SigningKey.generate()
    return {"private_key": b64(bytes(key)), "public_key": b64(bytes(key.verify_key))}


def sign(message: bytes, private_key_b64: str) -> str:
    return b64(signing_key(private_key_b64).sign(message).signature)


@lru_cache(maxsize=16)
def signing_key(private_key_b64: str) -> SigningKey:
    """The parsed key (deriving its public half costs as much as a signature: done once per key)."""
    return SigningKey(decode_key(private_key_b64))


def verify(message: bytes, signature_b64: str, public_key_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        VerifyKey(decode_key(public_key_b64)).verify(message, signature)
        return True
    except (BadSignatureError, binascii.Error, ValueError):
        return False


def decode_key(key_b64: str) -> bytes:
    raw = base64.b64decode(key_b64.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 key is 32 bytes, this one is {len(raw)}")
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
