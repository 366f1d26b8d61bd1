"""`warden disclosure open|platform-key` (the authority's side) and `warden seed` (synthetic feed)."""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import random
import sys
import urllib.request
import uuid
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import SealedBox
from nacl.signing import SigningKey, VerifyKey

from warden.certificate import certificate_problem
from warden.cli.common import bootstrap_option, bootstrap_servers, read_stack, run
from warden.cli.requests import read_private_key
from warden.contract.envelope import encode_structured, new_event
from warden.runtime import kafka
from warden.signing import canonical, decode_key


class PackageRefused(Exception):
    """The package cannot be trusted; the message says why (and never shows its content)."""


def open_package(event_data: dict[str, Any], authority_private_key: str, platform_public_key: str
                 ) -> dict[str, Any]:
    """Open the seal with the authority's key, check hash, signature and certificate, return the package.

    Hash, signature and the canonical check cover exactly the bytes sealed, `padding`
    included; the package returned leaves `padding` out (spaces that only set the
    sealed length) and keeps `nonce` (part of what the platform signed).
    """
    try:
        sealed = base64.b64decode(event_data["sealed"], validate=True)
        expected_sha256, signature_b64 = event_data["sha256"], event_data["signature"]
    except (KeyError, TypeError, binascii.Error):
        raise PackageRefused("not a disclosure: `sealed`, `sha256` and `signature` are required") from None
    private = SigningKey(decode_key(authority_private_key)).to_curve25519_private_key()
    try:
        body = SealedBox(private).decrypt(sealed)
    except CryptoError:
        raise PackageRefused("the seal does not open with this key: not sealed to it, or altered") from None
    if hashlib.sha256(body).hexdigest() != expected_sha256:
        raise PackageRefused("sha256 does not match the package: altered")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        VerifyKey(decode_key(platform_public_key)).verify(body, signature)
    except (BadSignatureError, binascii.Error, ValueError):
        raise PackageRefused("the platform signature does not verify: altered, or another platform key") from None
    package = json.loads(body)
    if canonical(package) != body:
        raise PackageRefused("the package is not in RFC 8785 canonical form")
    for field in ("case_id", "request_id", "authority_id", "account_id"):
        if field in event_data and event_data[field] != package.get(field):
            raise PackageRefused(f"the event's {field} differs from the sealed package's")
    problem = certificate_problem(package, platform_public_key)
    if problem:
        raise PackageRefused(problem)
    package.pop("padding", None)
    return package


def describe_certificate(package: dict[str, Any]) -> str:
    """The certificate of authenticity as a person reads it (open_package has checked it)."""
    certificate = package.get("certificate")
    if certificate is None:
        return "No certificate of authenticity: the platform issued this package without one."
    return (f"Certificate of authenticity (signed by platform key {certificate['key_id']}, "
            f"{certificate['certified_at']}):\n  {certificate['statement']}")


def _key_argument(value: str, field: str, option: str) -> str:
    """A key given inline (base64) or as a file (base64, or JSON from `warden keygen`)."""
    path = Path(value)
    if path.exists():
        text = path.read_text().strip()
        if text.startswith("{"):
            try:
                text = json.loads(text)[field]
            except (ValueError, KeyError, TypeError):
                raise click.BadParameter(f"{path} is JSON without a {field} field", param_hint=option) from None
        value = text
    try:
        decode_key(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an Ed25519 key: {exc}", param_hint=option) from None
    return value.strip()


@click.group()
def disclosure() -> None:
    """Open disclosure packages (the authority's side)."""


@disclosure.command("open")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key", required=True,
              help="the authority's Ed25519 private key: file (base64 or `warden keygen` JSON) or base64")
@click.option("--platform-key", "platform_key", required=True,
              help="the platform's disclosure public key: file or base64 (`warden disclosure platform-key`)")
def open_(file: Path, key: str, platform_key: str) -> None:
    """Open the disclosure in FILE (the issued event, or its data) and print the package.

    Checked first: the seal opens with the key, the hash and the platform's signature match, the
    form is canonical, and the package's certificate of authenticity is its own and signed by the
    platform key."""
    try:
        document = json.loads(file.read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{file} is not valid JSON: {exc}", param_hint="FILE") from None
    data = document.get("data", document) if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{file} must hold a disclosure event or its data", param_hint="FILE")
    private = (read_private_key(Path(key)) if Path(key).exists() else key).strip()
    try:
        decode_key(private)
    except ValueError as exc:
        raise click.BadParameter(f"not an Ed25519 key: {exc}", param_hint="--key") from None
    try:
        package = open_package(data, private, _key_argument(platform_key, "public_key", "--platform-key"))
    except PackageRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None
    click.echo(json.dumps(package, indent=2))  # the certificate, checked, is in it


@disclosure.command("platform-key")
def platform_key() -> None:
    """Print the platform's disclosure public key, from the running `warden up` stack."""
    stack = read_stack() or {}
    service = (stack.get("services") or {}).get("disclosure")
    if not service:
        raise click.ClickException("no running disclosure service found in the stack (`make run`)")
    with urllib.request.urlopen(service["url"] + "/platform-key", timeout=5) as response:
        click.echo(json.loads(response.read())["public_key"])


# --- seed ----------------------------------------------------------------------------

def synthetic_feed(accounts: int, sessions: int, seed: int, until: datetime, days: int = 180
                   ) -> tuple[list[tuple[str, dict]], dict]:
    """Deterministic (type, data) events: per account 1-3 phone numbers over time, then sessions."""
    rng = random.Random(seed)
    start = until - timedelta(days=days)
    events: list[tuple[str, dict]] = []
    example: dict = {}
    for i in range(accounts):
        account_id = f"seed{seed}-acct-{i:07d}"
        username = f"user_{seed}_{i}"
        changes = sorted(start + timedelta(seconds=rng.randrange(days * 86400)) for _ in range(rng.randint(1, 3)))
        changes[0] = start
        for at in changes:
            phone = "+336" + "".join(str(rng.randrange(10)) for _ in range(8))
            events.append(("warden.subscriber.account.updated.v1", {
                "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
                "updated_at": at.isoformat()}))
        if not example:
            example = {"account_id": account_id, "username": username, "phone_number": phone}
    for _ in range(sessions):
        account = rng.randrange(accounts)
        observed = start + timedelta(seconds=rng.randrange(days * 86400))
        ip = (f"203.0.113.{rng.randrange(1, 255)}" if rng.random() < 0.7
              else f"2001:db8::{rng.randrange(1, 0xffff):x}")
        events.append(("warden.subscriber.session.observed.v1", {
            "account_id": f"seed{seed}-acct-{account:07d}", "ip": ip, "observed_at": observed.isoformat()}))
    return events, example


async def _publish_all(bootstrap: str, events: list[tuple[str, dict]], seed: int, until: datetime) -> None:
    producer = kafka.producer(bootstrap)
    await kafka.start_with_retry(producer, "cli", attempts=10)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"warden-seed/{seed}/{until.date()}")
    try:
        with click.progressbar(length=len(events), label="publishing subscriber events", file=sys.stderr) as bar:
            for chunk_start in range(0, len(events), 2000):
                chunk = events[chunk_start:chunk_start + 2000]
                pending = []
                for n, (event_type, data) in enumerate(chunk, start=chunk_start):
                    # Same seed, same day: same event ids, so a re-run is dropped by the inbox.
                    event = new_event(event_type, "/warden/seed", data, event_id=str(uuid.uuid5(namespace, str(n))))
                    value, headers = encode_structured(event)
                    pending.append(await producer.send("platform.subscribers", value,
                                                       key=data["account_id"].encode(), headers=headers))
                await asyncio.gather(*pending)
                bar.update(len(chunk))
    finally:
        await producer.stop()


@click.command()
@click.option("--accounts", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--sessions", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, help="same seed (same day): same data and event ids")
@bootstrap_option
def seed(accounts: int, sessions: int, seed: int, bootstrap: str | None) -> None:
    """Publish synthetic subscriber events (accounts, then sessions) to platform.subscribers."""
    until = datetime.combine(datetime.now(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    events, example = synthetic_feed(accounts, sessions, seed, until)
    run(_publish_all(bootstrap_servers(bootstrap), events, seed, until))
    click.echo(json.dumps({"accounts": accounts, "sessions": sessions, "events": len(events),
                           "example_suspect": example}))
