"""The authority registry as each service sees it: a projection of `legal.authorities`.

Intake verifies signatures with it, legal review applies policy by kind and
country, disclosure seals packages to it (DESIGN.md). Each service keeps its own
copy in its own schema; this module is the one way to build and read that copy.

Only operators say who is an authority: a record changes the projection only when it
carries valid signatures by configured registry keys (`WARDEN_REGISTRY_PUBLIC_KEYS`)
over the RFC 8785 form of the record without `signatures`; a new authority or a new key
needs `WARDEN_REGISTRY_QUORUM` distinct signers; a record dated ahead of the clock is
refused; and a revoked key stays revoked (`authority_keys`). Anything else is rejected
to the DLQ with its reason and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncpg

from warden.contract.envelope import EventRejected, now
from warden.contract.events import AuthorityRegistered
from warden.keys import key_id, public_key_of, public_keys
from warden.runtime.database import MigrationSet
from warden.runtime.service import BatchState, ConfigurationError, Context, Subscription
from warden.signing import canonical, sign, verify

AUTHORITY_MIGRATIONS = MigrationSet("authorities", Path(__file__).parent / "sql" / "authorities")


def record_bytes(record: dict[str, Any]) -> bytes:
    """What operators sign: the canonical JSON of the record without its signatures."""
    return canonical({k: v for k, v in record.items() if k != "signatures"})


def sign_record(record: dict[str, Any], *private_keys: str) -> dict[str, Any]:
    """The record with one signature per operator key (`warden authority add|revoke`)."""
    body = {k: v for k, v in record.items() if k != "signatures"}
    message = record_bytes(body)
    return dict(body, signatures=[{"key_id": key_id(public_key_of(k)), "signature": sign(message, k)}
                                  for k in private_keys])


@dataclass(frozen=True)
class RegistryTrust:
    keys: dict[str, str]  # key id -> public key
    quorum: int
    max_skew: timedelta


@lru_cache(maxsize=8)
def _trust(configured: str, quorum: int, skew_s: int) -> RegistryTrust:
    return RegistryTrust(public_keys(configured), quorum, timedelta(seconds=skew_s))


def registry_trust(settings) -> RegistryTrust:
    return _trust(settings.registry_public_keys, settings.registry_quorum, settings.registry_max_skew_s)


def require_registry_keys(settings) -> None:
    """Startup check of every service that reads the registry."""
    try:
        trust = registry_trust(settings)
    except ValueError as exc:
        raise ConfigurationError(f"WARDEN_REGISTRY_PUBLIC_KEYS: {exc}") from None
    if not trust.keys:
        raise ConfigurationError(
            "WARDEN_REGISTRY_PUBLIC_KEYS is not set: without the operators' registry public keys no "
            "authority record can be trusted (docs/deployment.md, 'Keys'); `warden up` sets development keys")
    if trust.quorum > len(trust.keys):
        raise ConfigurationError(f"WARDEN_REGISTRY_QUORUM is {trust.quorum} but only {len(trust.keys)} "
                                 "registry keys are configured")


def verified_signers(record: dict[str, Any], trust: RegistryTrust) -> set[str]:
    """The distinct configured keys that signed the record; EventRejected if any signature is wrong or foreign."""
    signatures = record.get("signatures") or []
    if not signatures:
        raise EventRejected("registry_unsigned", "registry record carries no operator signature")
    message = record_bytes(record)
    signers = set()
    for entry in signatures:
        key = trust.keys.get(entry.get("key_id"))
        if key is None:
            raise EventRejected("registry_unknown_signer",
                                f"registry record signed by key {str(entry.get('key_id'))[:16]!r}, not a configured "
                                "registry key")
        if not verify(message, entry.get("signature", ""), key):
            raise EventRejected("registry_bad_signature",
                                f"registry signature of key {entry['key_id']} does not verify")
        signers.add(entry["key_id"])
    return signers


async def record_authority(ctx: Context, authority: AuthorityRegistered) -> None:
    """Project a verified registry record; refuse anything operators did not sign."""
    assert ctx.envelope is not None
    trust = registry_trust(ctx.settings)
    signers = verified_signers(ctx.envelope.data, trust)
    if authority.updated_at > now() + trust.max_skew:
        raise EventRejected("registry_future_dated", "registry record dated ahead of the clock")
    state = _state(ctx)
    state.authorities.pop(authority.authority_id, None)  # see authority_of
    state.authority_keys.pop(authority.authority_id, None)  # see keys_of
    key = await ctx.conn.fetchrow("SELECT revoked_at FROM authority_keys WHERE authority_id = $1 AND public_key = $2",
                                  authority.authority_id, authority.public_key)
    if authority.status == "revoked":
        await revoke_key(ctx.conn, authority)
    elif key is not None and key["revoked_at"] is not None:
        raise EventRejected("registry_revoked_key", "registry record re-activates a revoked key")
    elif key is None and len(signers) < trust.quorum:
        raise EventRejected("registry_quorum",
                            f"a new authority key needs {trust.quorum} operator signatures, this record has "
                            f"{len(signers)}")
    else:
        await ctx.conn.execute(
            "INSERT INTO authority_keys (authority_id, public_key, registered_at) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING", authority.authority_id, authority.public_key, authority.updated_at)
    # Upsert, ignoring records older than what is known (compaction may replay).
    await ctx.conn.execute(
        """INSERT INTO authorities (authority_id, name, country, kind, public_key, status, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (authority_id) DO UPDATE SET
             name = EXCLUDED.name, country = EXCLUDED.country, kind = EXCLUDED.kind,
             public_key = EXCLUDED.public_key, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
           WHERE authorities.updated_at <= EXCLUDED.updated_at""",
        authority.authority_id, authority.name, authority.country, authority.kind.value,
        authority.public_key, authority.status, authority.updated_at)


async def revoke_key(conn: asyncpg.Connection, authority: AuthorityRegistered) -> None:
    """The record's key is revoked for good, and with the authority every key it ever had."""
    await conn.execute(
        "INSERT INTO authority_keys (authority_id, public_key, registered_at, revoked_at) VALUES ($1, $2, $3, $3)"
        " ON CONFLICT (authority_id, public_key) DO UPDATE SET"
        " revoked_at = LEAST(COALESCE(authority_keys.revoked_at, EXCLUDED.revoked_at), EXCLUDED.revoked_at)",
        authority.authority_id, authority.public_key, authority.updated_at)
    await conn.execute("UPDATE authority_keys SET revoked_at = $2 WHERE authority_id = $1 AND revoked_at IS NULL",
                       authority.authority_id, authority.updated_at)


async def find_authority(conn: asyncpg.Connection, authority_id: str) -> AuthorityRegistered | None:
    row = await conn.fetchrow("SELECT * FROM authorities WHERE authority_id = $1", authority_id)
    return AuthorityRegistered.model_validate(dict(row)) if row else None


@dataclass
class AuthorityState(BatchState):
    """The batch state of a service that checks authorities (Service.batch_state derives from it):
    each authority and its keys, read once per transaction; record_authority drops what it changes."""

    authorities: dict[str, AuthorityRegistered | None] = field(default_factory=dict)
    authority_keys: dict[str, dict[str, bool]] = field(default_factory=dict)


def _state(ctx: Context) -> AuthorityState:
    if not isinstance(ctx.state, AuthorityState):
        raise TypeError(f"{ctx.service}'s batch_state must derive from AuthorityState to check authorities")
    return ctx.state


async def authority_of(ctx: Context, authority_id: str) -> AuthorityRegistered | None:
    """find_authority, read once per transaction (AuthorityState); record_authority drops the entry."""
    known = _state(ctx).authorities
    if authority_id not in known:
        known[authority_id] = await find_authority(ctx.conn, authority_id)
    return known[authority_id]


async def keys_of(ctx: Context, authority_id: str) -> dict[str, bool]:
    """{public key: revoked} of every key the authority was registered with, newest first; read once per
    transaction (AuthorityState); record_authority drops the entry."""
    known = _state(ctx).authority_keys
    if authority_id not in known:
        rows = await ctx.conn.fetch("SELECT public_key, revoked_at IS NOT NULL AS revoked FROM authority_keys"
                                    " WHERE authority_id = $1 ORDER BY registered_at DESC", authority_id)
        known[authority_id] = {r["public_key"]: r["revoked"] for r in rows}
    return known[authority_id]


async def usable_keys(ctx: Context, authority_id: str) -> list[str]:
    """Every key the authority was registered with and that is not revoked (rotation keeps the older ones)."""
    return [public_key for public_key, revoked in (await keys_of(ctx, authority_id)).items() if not revoked]


async def key_standing(ctx: Context, authority_id: str, public_key: str) -> str | None:
    """"active" or "revoked" for a key registered for the authority; None for a key never registered to it."""
    revoked = (await keys_of(ctx, authority_id)).get(public_key)
    return None if revoked is None else "revoked" if revoked else "active"


# Caught up at start: a request or decision is never checked against a registry still being read.
AUTHORITY_REGISTRY = Subscription("legal.authorities", record_authority, catch_up_first=True)
