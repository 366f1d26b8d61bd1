"""`warden authority add|revoke|list`: the registry on the compacted `legal.authorities` topic."""
from __future__ import annotations

import json
from pathlib import Path
from datetime import datetime, timezone

import click
from pydantic import ValidationError

from warden.authorities import sign_record
from warden.contract.events import AuthorityRegistered
from warden.cli.common import KEYS_DIR, bootstrap_option, bootstrap_servers, publish, read_all, run
from warden.keys import read_key_file
from warden.signing import decode_key

TOPIC = "legal.authorities"
EVENT_TYPE = "warden.legal.authority.registered.v1"


async def current_registry(bootstrap: str) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for event in await read_all(bootstrap, TOPIC):
        data = event.get("data") or {}
        if event.get("type") == EVENT_TYPE and "authority_id" in data:
            latest[data["authority_id"]] = data
    return latest


@click.group()
def authority() -> None:
    """Register, revoke and list recognised authorities."""


registry_key_option = click.option(
    "--registry-key", "registry_keys", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    envvar="WARDEN_REGISTRY_KEY_FILE",
    help="operator registry private key file (JSON from `warden keygen`, or base64); repeat to sign with "
         "several keys for a quorum (default: $WARDEN_REGISTRY_KEY_FILE, else the development key "
         "`warden up` created in .warden/keys/registry.json)")


def operator_keys(paths: tuple[Path, ...]) -> list[str]:
    paths = paths or (KEYS_DIR / "registry.json",)
    keys = []
    for path in paths:
        try:
            keys.append(read_key_file(path)["private_key"])
        except FileNotFoundError:
            raise click.ClickException(
                f"no registry key at {path}: pass --registry-key FILE (the operator's key), or start the "
                "development stack with `warden up`, which creates one") from None
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(f"cannot use the registry key in {path}: {exc}") from None
    return keys


@authority.command("add")
@click.argument("authority_id")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. FR")
@click.option("--kind", required=True, type=click.Choice(["court", "prosecutor", "police"]))
@click.option("--public-key", required=True, help="standard base64 of the raw 32-byte Ed25519 public key")
@click.option("--name", default=None, help="display name (defaults to the id)")
@registry_key_option
@bootstrap_option
def add(authority_id: str, country: str, kind: str, public_key: str, name: str | None,
        registry_keys: tuple[Path, ...], bootstrap: str | None) -> None:
    """Register (or update) an authority and its signing key, signed with the operator registry key."""
    signing_keys = operator_keys(registry_keys)
    try:
        decode_key(public_key)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; pass the public_key printed by `warden keygen`",
                                 param_hint="--public-key") from None
    try:
        record = AuthorityRegistered(
            authority_id=authority_id, name=name or authority_id, country=country.upper(), kind=kind,
            public_key=public_key.strip(), status="active", updated_at=datetime.now(timezone.utc))
    except ValidationError as exc:
        raise click.UsageError(_explain(exc)) from None
    signed = sign_record(record.model_dump(mode="json", exclude={"signatures"}), *signing_keys)
    run(publish(bootstrap_servers(bootstrap), TOPIC, EVENT_TYPE, signed, "/warden/cli"))
    click.echo(f"authority {authority_id} registered ({kind}, {record.country})")


@authority.command("revoke")
@click.argument("authority_id")
@registry_key_option
@bootstrap_option
def revoke(authority_id: str, registry_keys: tuple[Path, ...], bootstrap: str | None) -> None:
    """Revoke an authority and its key for good: its requests are refused from now on."""
    signing_keys = operator_keys(registry_keys)
    servers = bootstrap_servers(bootstrap)
    registry = run(current_registry(servers))
    if authority_id not in registry:
        raise click.ClickException(f"no authority {authority_id!r} is registered; see `warden authority list`")
    record = dict(registry[authority_id], status="revoked", updated_at=datetime.now(timezone.utc).isoformat())
    run(publish(servers, TOPIC, EVENT_TYPE, sign_record(record, *signing_keys), "/warden/cli"))
    click.echo(f"authority {authority_id} revoked")


@authority.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@bootstrap_option
def list_(as_json: bool, bootstrap: str | None) -> None:
    """List the registered authorities."""
    registry = run(current_registry(bootstrap_servers(bootstrap)))
    if as_json:
        click.echo(json.dumps(sorted(registry.values(), key=lambda a: a["authority_id"]), indent=2))
        return
    if not registry:
        click.echo("no authorities registered; add one with `warden authority add`")
        return
    click.echo(f"{'AUTHORITY':<24} {'KIND':<11} {'CC':<3} {'STATUS':<8} NAME")
    for a in sorted(registry.values(), key=lambda a: a["authority_id"]):
        click.echo(f"{a['authority_id']:<24} {a['kind']:<11} {a['country']:<3} {a['status']:<8} {a['name']}")


def _explain(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
