"""The authority registry as each service sees it: a projection of `legal.authorities`.

Intake verifies signatures with it, legal review applies policy by kind and
country, disclosure seals packages to it (DESIGN.md). Each service keeps its own
copy in its own schema; this module is the one way to build and read that copy.
"""
from __future__ import annotations

from pathlib import Path

import asyncpg

from warden.contract.events import AuthorityRegistered
from warden.runtime.database import MigrationSet
from warden.runtime.service import Context, Subscription

AUTHORITY_MIGRATIONS = MigrationSet("authorities", Path(__file__).parent / "sql" / "authorities")


async def record_authority(ctx: Context, authority: AuthorityRegistered) -> None:
    """Upsert, ignoring updates older than what is known (compaction may replay)."""
    ctx.cache.pop(("authority", authority.authority_id), None)  # see authority_of
    await ctx.conn.execute(
        """INSERT INTO authorities (authority_id, name, country, kind, public_key, status, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (authority_id) DO UPDATE SET
             name = EXCLUDED.name, country = EXCLUDED.country, kind = EXCLUDED.kind,
             public_key = EXCLUDED.public_key, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
           WHERE authorities.updated_at <= EXCLUDED.updated_at""",
        authority.authority_id, authority.name, authority.country, authority.kind.value,
        authority.public_key, authority.status, authority.updated_at)


async def find_authority(conn: asyncpg.Connection, authority_id: str) -> AuthorityRegistered | None:
    row = await conn.fetchrow("SELECT * FROM authorities WHERE authority_id = $1", authority_id)
    return AuthorityRegistered.model_validate(dict(row)) if row else None


async def authority_of(ctx: Context, authority_id: str) -> AuthorityRegistered | None:
    """find_authority, read once per consumer batch (Context.cache); record_authority drops the entry."""
    key = ("authority", authority_id)
    if key not in ctx.cache:
        ctx.cache[key] = await find_authority(ctx.conn, authority_id)
    return ctx.cache[key]


AUTHORITY_REGISTRY = Subscription("legal.authorities", record_authority)
