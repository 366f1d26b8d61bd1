"""The test run's trust anchors: fixed registry, decision and audit keys (warden/keys.py).

tests/conftest.py puts them in the environment before anything reads settings, so
in-process services (`Settings()`), service processes (they inherit the environment)
and the CLI (`WARDEN_REGISTRY_KEY_FILE`) all use the same ones. A test that needs
others (a forger's, a second operator's) builds them here.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from nacl.signing import SigningKey

from warden.signing import b64


def pair(label: str) -> dict[str, str]:
    """A key pair derived from a label: the same in every run, different for every label."""
    key = SigningKey(hashlib.sha256(f"warden-tests:{label}".encode()).digest())
    return {"private_key": b64(bytes(key)), "public_key": b64(bytes(key.verify_key))}


REGISTRY = pair("registry")
SECOND_OPERATOR = pair("registry-2")
DECISION = pair("decision")
AUDIT = pair("audit")


def install() -> None:
    """Set the test keys in the environment, and write the registry key file the CLI signs with."""
    key_file = Path(tempfile.mkdtemp(prefix="warden-test-keys-")) / "registry.json"
    key_file.write_text(json.dumps(REGISTRY))
    key_file.chmod(0o600)
    os.environ.update({
        "WARDEN_REGISTRY_PUBLIC_KEYS": f"{REGISTRY['public_key']},{SECOND_OPERATOR['public_key']}",
        "WARDEN_REGISTRY_KEY_FILE": str(key_file),
        "WARDEN_DECISION_PRIVATE_KEY": DECISION["private_key"],
        "WARDEN_DECISION_PUBLIC_KEYS": DECISION["public_key"],
        "WARDEN_AUDIT_PRIVATE_KEY": AUDIT["private_key"],
        "WARDEN_AUDIT_PUBLIC_KEYS": AUDIT["public_key"],
    })
