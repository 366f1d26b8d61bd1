"""Who is calling the authority API: an active registered authority, by its HTTP Message Signature.

The signature's format and rules are warden/http_signatures.py's; here is what
needs intake's database: the key look-up in intake's registry projection (the
authority active, its keys not revoked) and the replay cache (each signature
accepted once, kept for the freshness window, then pruned).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

import asyncpg
import http_sf
from prometheus_client import Counter

from warden.authorities import find_authority
from warden.http_signatures import (
    WINDOW,
    HttpMessage,
    SignatureRefused,
    check_signature_input,
    read_signature_input,
    verify_signature,
)
from warden.runtime.jobs import every

log = logging.getLogger(__name__)
REFUSED = Counter("warden_authority_api_refused_total", "Authority API calls refused as unauthenticated",
                  ["reason"])
PRUNE_EVERY_S = 60.0


async def authenticate(pool: asyncpg.Pool, message: HttpMessage, body: bytes, at: datetime) -> str:
    """The id of the authority that signed the call; SignatureRefused otherwise (counted, logged without content)."""
    try:
        return await _authenticate(pool, message, body, at)
    except SignatureRefused as refused:
        REFUSED.labels(refused.code).inc()
        log.info("authority API call refused", extra={"reason": refused.code})
        raise


async def _authenticate(pool: asyncpg.Pool, message: HttpMessage, body: bytes, at: datetime) -> str:
    signed = read_signature_input(message.headers)
    check_signature_input(signed, has_body=bool(body), at=at)
    authority_id = signed.keyid
    async with pool.acquire() as conn:
        authority = await find_authority(conn, authority_id)
        if authority is None:
            raise SignatureRefused("unknown_authority", f"keyid {authority_id[:128]!r} is not a registered authority")
        keys = await unrevoked_keys(conn, authority_id)
        if authority.status != "active" or not keys:
            raise SignatureRefused("revoked_authority", f"authority {authority_id[:128]!r} is revoked")
        verify_signature(message, body, authority_id, keys)
        first_use = await conn.fetchval(
            "INSERT INTO api_signatures (signature_sha256, authority_id, created) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            signature_fingerprint(message.headers["signature"]), authority_id,
            datetime.fromtimestamp(signed.created or 0, timezone.utc))
    if not first_use:
        raise SignatureRefused("replayed_signature", "this signature was already used; sign each call anew")
    return authority_id


async def unrevoked_keys(conn: asyncpg.Connection, authority_id: str) -> list[str]:
    """The authority's registered keys not revoked, newest first (intake's registry projection)."""
    return [r["public_key"] for r in await conn.fetch(
        "SELECT public_key FROM authority_keys WHERE authority_id = $1 AND revoked_at IS NULL"
        " ORDER BY registered_at DESC", authority_id)]


def signature_fingerprint(signature_header: str) -> str:
    """SHA-256 of the signature's bytes: the label around them is not signed, so it must not make a new entry."""
    try:
        parsed = http_sf.parse(signature_header.encode(), tltype="dictionary")
        (value, _), = parsed.values()
    except (ValueError, TypeError, UnicodeError):
        raise SignatureRefused("malformed_signature", "Signature must hold exactly one byte sequence") from None
    if not isinstance(value, bytes):
        raise SignatureRefused("malformed_signature", "Signature must hold exactly one byte sequence")
    return hashlib.sha256(value).hexdigest()


async def prune_signatures(runtime) -> None:
    """Background job: forget signatures older than the window; they are refused as stale anyway."""
    async def step() -> None:
        async with runtime.pool.acquire() as conn:
            await conn.execute("DELETE FROM api_signatures WHERE created < now() - $1::interval", WINDOW)

    await every(runtime.stopping, PRUNE_EVERY_S, step, "signature_pruning", wait_first=True)
