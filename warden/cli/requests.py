"""`warden keygen` and `warden submit`: the authority's side of a request."""
from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import ValidationError

from warden.cli.common import bootstrap_option, bootstrap_servers, publish, run
from warden.contract.events import LegalRequest
from warden.signing import generate_keypair, sign, signed_bytes


@click.command()
def keygen() -> None:
    """Print a new Ed25519 key pair as JSON (raw 32-byte keys, standard base64)."""
    click.echo(json.dumps(generate_keypair()))


def read_private_key(path: Path) -> str:
    """A key file holds the base64 key, or the JSON `warden keygen` prints."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--key") from None
    if text.startswith("{"):
        try:
            text = json.loads(text)["private_key"]
        except (ValueError, KeyError, TypeError):
            raise click.BadParameter(f"{path} is JSON without a private_key field", param_hint="--key") from None
    return text


def sign_request(request: dict, private_key: str) -> dict:
    signed = {k: v for k, v in request.items() if k != "signature"}
    signed["signature"] = sign(signed_bytes(signed), private_key)
    return signed


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(path_type=Path),
              help="the authority's private key file (base64, or JSON from `warden keygen`)")
@bootstrap_option
def submit(file: Path, key_file: Path, bootstrap: str | None) -> None:
    """Sign the request in FILE (JSON) and publish it to legal.requests.submitted."""
    try:
        request = json.loads(file.read_text())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="FILE") from None
    except ValueError as exc:
        raise click.BadParameter(f"{file} is not valid JSON: {exc}", param_hint="FILE") from None
    if not isinstance(request, dict):
        raise click.BadParameter(f"{file} must hold a JSON object (the request's data)", param_hint="FILE")
    try:
        signed = sign_request(request, read_private_key(key_file))
    except ValueError as exc:
        raise click.BadParameter(f"the key is not usable: {exc}", param_hint="--key") from None
    try:
        LegalRequest.model_validate(signed)
    except ValidationError as exc:
        problems = "\n  ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors(include_input=False))
        raise click.ClickException(f"{file} is not a valid request:\n  {problems}") from None
    event = run(publish(bootstrap_servers(bootstrap), "legal.requests.submitted",
                        "warden.legal.request.submitted.v1", signed, f"/authorities/{signed['authority_id']}"))
    click.echo(json.dumps({"request_id": signed["request_id"], "authority_id": signed["authority_id"],
                           "event_id": event["id"]}))
