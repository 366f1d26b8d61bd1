"""The keys a deployment holds, and how the services are given them.

Four Ed25519 keys anchor Warden's trust model (DESIGN.md, "Trust model"):
- **registry**: operators sign `legal.authorities` records with it; every service reading the
  registry holds the public halves (`WARDEN_REGISTRY_PUBLIC_KEYS`, several for rotation);
- **decision**: legal review signs its approvals and rejections (`WARDEN_DECISION_PRIVATE_KEY`);
  disclosure holds the public halves (`WARDEN_DECISION_PUBLIC_KEYS`);
- **audit**: legal review and disclosure sign their audit entries and checkpoints;
- **platform**: disclosure signs packages (`WARDEN_DISCLOSURE_PRIVATE_KEY`).

A key is named by its key id: the first 16 hex digits of the SHA-256 of the raw public key,
so an id cannot be configured apart from the key it names.

`warden up` with its embedded broker and database creates development keys under
`.warden/keys/` (mode 0600) and hands them to the services it starts; everywhere else the
operator configures them, and a service missing one refuses to start, saying which.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from warden.files import write_private
from warden.signing import b64, decode_key, generate_keypair, signing_key

KEY_FILES = ("registry", "decision", "audit")


def key_id(public_key_b64: str) -> str:
    return hashlib.sha256(decode_key(public_key_b64)).hexdigest()[:16]


def public_keys(configured: str) -> dict[str, str]:
    """{key id: public key} from a setting: base64 keys separated by commas, spaces or newlines.

    Raises ValueError naming the position of a key that is not a 32-byte Ed25519 key.
    """
    keys: dict[str, str] = {}
    for position, text in enumerate(configured.replace(",", " ").split(), start=1):
        try:
            keys[key_id(text)] = text
        except ValueError as exc:
            raise ValueError(f"key {position} of the list is not usable: {exc}") from None
    return keys


def public_key_of(private_key_b64: str) -> str:
    return b64(bytes(signing_key(private_key_b64).verify_key))


def read_key_file(path: Path | str) -> dict[str, str]:
    """A key file as `warden keygen` writes it ({"private_key", "public_key"}), or one line of base64."""
    text = Path(path).read_text().strip()
    if text.startswith("{"):
        pair = json.loads(text)
        private = pair["private_key"]
    else:
        private = text
    return {"private_key": private, "public_key": public_key_of(private)}


def development_keys(directory: Path) -> dict[str, dict[str, str]]:
    """The embedded stack's keys, created once under `directory` (mode 0600) and reused after."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    keys = {}
    for name in KEY_FILES:
        path = directory / f"{name}.json"
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another `warden up` created it first: that one is the key
                write_private(path, json.dumps(generate_keypair()), replace=False)
        keys[name] = read_key_file(path)
    return keys


def development_environment(keys: dict[str, dict[str, str]], env: dict[str, str]) -> dict[str, str]:
    """The settings that give the services the development keys, for those the operator did not set."""
    wanted = {
        "WARDEN_REGISTRY_PUBLIC_KEYS": keys["registry"]["public_key"],
        "WARDEN_DECISION_PRIVATE_KEY": keys["decision"]["private_key"],
        "WARDEN_DECISION_PUBLIC_KEYS": keys["decision"]["public_key"],
        "WARDEN_AUDIT_PRIVATE_KEY": keys["audit"]["private_key"],
        "WARDEN_AUDIT_PUBLIC_KEYS": keys["audit"]["public_key"],
    }
    return {name: value for name, value in wanted.items() if not env.get(name)}
