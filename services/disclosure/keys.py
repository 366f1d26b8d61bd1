"""The platform's disclosure key: configured, or generated once for the embedded default."""
from __future__ import annotations

import asyncpg

from warden.runtime.settings import ConfigurationError, Settings
from warden.signing import generate_keypair

from disclosure.settings import DisclosureSettings


def require_platform_key(settings: Settings) -> None:
    """Outside the embedded default the key is configured, never made up and kept in the database."""
    if settings.embedded_defaults or DisclosureSettings().disclosure_private_key is not None:
        return
    raise ConfigurationError(
        "WARDEN_DISCLOSURE_PRIVATE_KEY is not set: disclosure signs every package with the platform's key, "
        "which must come from your secret store (`warden keygen` makes one); only the embedded default "
        "(WARDEN_EMBEDDED_DEFAULTS=true, set by `warden up` and the tests) generates one into its database")


async def platform_private_key(conn: asyncpg.Connection, settings: DisclosureSettings) -> str:
    """WARDEN_DISCLOSURE_PRIVATE_KEY when set; else the key kept in `platform_key`."""
    if settings.disclosure_private_key is not None:
        return settings.disclosure_private_key.get_secret_value().strip()
    stored = await conn.fetchval("SELECT private_key FROM platform_key")
    if stored is not None:
        return stored
    keys = generate_keypair()
    await conn.execute("INSERT INTO platform_key (private_key, public_key) VALUES ($1, $2)"
                       " ON CONFLICT DO NOTHING", keys["private_key"], keys["public_key"])
    return await conn.fetchval("SELECT private_key FROM platform_key")
