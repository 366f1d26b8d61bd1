"""Ed25519 signatures over RFC 8785 canonical JSON, as authorities and the platform use them."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


def canonical(document: Any) -> bytes:
    return rfc8785.dumps(document)


def signed_bytes(request_data: dict[str, Any]) -> bytes:
    """What an authority signs: the canonical JSON of `data` without `signature`."""
    return canonical({k: v for k, v in request_data.items() if k != "signature"})


def generate_keypair() -> dict[str, str]:
    key = SigningKey.generate()
    return {"private_key": b64(bytes(key)), "public_key": b64(bytes(key.verify_key))}


def sign(message: bytes, private_key_b64: str) -> str:
    return b64(SigningKey(decode_key(private_key_b64)).sign(message).signature)


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
