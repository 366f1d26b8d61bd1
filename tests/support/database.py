"""Fresh databases on the session's PostgreSQL server, so tests never share state."""
from __future__ import annotations

import asyncio
import uuid

import asyncpg

from warden.embedded import EmbeddedPostgres


def new_database(postgres: EmbeddedPostgres, prefix: str = "t") -> str:
    """Create an empty database and return its URL (safe to call outside an event loop only)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(postgres.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return postgres.server.get_uri(name)
