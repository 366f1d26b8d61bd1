"""Playing the database administrator against the audit chains: read, rewrite, re-sign; and the
checkpoints on Kafka that `warden audit verify` holds the chains to."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import asyncpg
from click.testing import CliRunner, Result

from warden import audit
from warden.cli.common import publish, read_all
from warden.cli.main import cli
from warden.contract.events import AuditCheckpoint


async def entries(conn: asyncpg.Connection, schema: str) -> list[audit.AuditEntry]:
    return [audit.entry_of(r) for r in await conn.fetch(f"SELECT * FROM {schema}.audit_log ORDER BY seq")]


async def checkpoints(bootstrap: str) -> list[AuditCheckpoint]:
    return audit.parse_checkpoints(await read_all(bootstrap, audit.CHECKPOINT_TOPIC, idle_ms=200))


async def anchored(bootstrap: str, database_url: str, service: str, schema: str, timeout: float = 20) -> int:
    """Wait until a checkpoint of this chain reaches its last entry; that entry's seq."""
    conn = await asyncpg.connect(database_url)
    try:
        chain_id = await audit.chain_id_of(conn, schema)
        last = await conn.fetchval(f"SELECT max(seq) FROM {schema}.audit_log")
    finally:
        await conn.close()
    assert last, "the chain is empty"
    deadline = time.monotonic() + timeout
    while not any(c.chain_id == chain_id and c.seq == last for c in await checkpoints(bootstrap)):
        assert time.monotonic() < deadline, f"no checkpoint of {service} entry {last} after {timeout}s"
        await asyncio.sleep(0.3)
    return last


def rehashed(chain: list[audit.AuditEntry], start: int, changes: dict[str, Any]) -> list[audit.AuditEntry]:
    """The chain with entry `start` changed, and its hash and every later link recomputed, as someone
    with write access to the table but not the audit key can (the signatures stay as they were)."""
    out, prev = [], None
    for entry in chain:
        if entry.seq == start:
            entry = dataclasses.replace(entry, **changes)
        if entry.seq >= start:
            entry = dataclasses.replace(entry, prev_hash=prev if prev is not None else entry.prev_hash)
            entry = dataclasses.replace(entry, hash=audit.entry_hash(entry))
        out.append(entry)
        prev = entry.hash
    return out


def resigned(chain: list[audit.AuditEntry], signer: audit.AuditSigner, service: str, chain_id: str,
             claimed_key_id: str | None = None) -> list[audit.AuditEntry]:
    """Every entry signed again with `signer` (a forger's key), naming `claimed_key_id` if given."""
    return [dataclasses.replace(e, key_id=claimed_key_id or signer.key_id, signature=signer.sign(
        audit.signed_entry_bytes(service, chain_id, e.seq, e.hash))) for e in chain]


async def store(conn: asyncpg.Connection, schema: str, chain: list[audit.AuditEntry]) -> None:
    """Write the entries over the table's rows, as a database administrator would."""
    async with conn.transaction():
        await conn.execute(f"DELETE FROM {schema}.audit_log")
        await conn.executemany(f"INSERT INTO {schema}.audit_log ({audit.COLUMNS}) VALUES ({audit.placeholders(1)})",
                               [audit.entry_values(e) for e in chain])


async def publish_checkpoint(bootstrap: str, checkpoint: AuditCheckpoint) -> None:
    await publish(bootstrap, audit.CHECKPOINT_TOPIC, audit.CHECKPOINT, checkpoint.model_dump(mode="json"),
                  f"/warden/{checkpoint.service}")


def verify(bootstrap: str, database_url: str, service: str) -> Result:
    return CliRunner().invoke(cli, ["audit", "verify", "--service", service, "--database-url", database_url,
                                    "--bootstrap", bootstrap])
