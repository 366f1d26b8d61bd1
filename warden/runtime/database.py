"""Postgres access: a pool bound to the service's schema, migrations, transient-error rules."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson

from warden.runtime.backoff import Backoff
from warden.runtime.settings import ConfigurationError

log = logging.getLogger(__name__)
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

# Failures that pass by themselves: retry with backoff, never dead-letter.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, query cancelled
    # A failover: the server this pool reached is a standby now (or still), and refuses writes until the pool's
    # connections reach the new primary.
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout, where an operator sets one
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,  # the server closed a session it found idle
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    # The server closed a pooled connection (shutdown, restart) and the connection was handed out between the
    # server's farewell and the socket's end: its protocol is mid-error, so the next query fails this way.
    asyncpg.InternalClientError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


async def after_transient(pool: asyncpg.Pool | None, exc: BaseException) -> None:
    """What a transient failure asks of the pool before the retry. After a failover the pool's connections
    may still reach the demoted server, which refuses every write for as long as they last: all of them are
    replaced (the next acquire opens new ones, which reach the new primary; those in use close on release)."""
    if pool is not None and isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
        await pool.expire_connections()


def rows_param(rows: list[tuple]) -> str:
    """Many rows as one `jsonb` parameter (a JSON array of arrays), read in SQL as
    `jsonb_array_elements($n::jsonb) AS r` and `r->>0`, `(r->>5)::timestamptz`, … in order.

    For wide set-based writes on the hot path: asyncpg encodes an array parameter element by element
    and checks each element against `collections.abc` in Python, ~0.6 µs an element; one JSON document
    costs the worker a tenth of that and Postgres about what the arrays cost it. Values are str, bool,
    int, float (finite), datetime (a naive one is UTC, as asyncpg reads it) or None. A string Postgres
    cannot store (a NUL) fails the statement, as it would as an array element."""
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()


@dataclass(frozen=True)
class MigrationSet:
    """SQL files `NNN_name.sql` applied in order, once, recorded under `component`."""

    component: str
    folder: Path

    def files(self) -> list[tuple[int, Path]]:
        found = []
        for path in sorted(self.folder.glob("*.sql")):
            match = _MIGRATION_FILE.match(path.name)
            if not match:
                raise ValueError(f"migration file {path} must be named NNN_snake_case.sql")
            found.append((int(match.group(1)), path))
        versions = [version for version, _ in found]
        twice = sorted({v for v in versions if versions.count(v) > 1})
        if twice:
            raise ValueError(f"{self.folder}: two migrations numbered {', '.join(f'{v:03d}' for v in twice)}: "
                             "renumber the newer one")
        return found


RUNTIME_MIGRATIONS = MigrationSet("runtime", Path(__file__).parent / "sql")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's reset query (advisory unlock all, CLOSE ALL, UNLISTEN *, RESET ALL).

    That query is one more round trip on every release (each consumer batch, each relay pass).
    It resets nothing here: no Warden code keeps session state on a pooled connection (checked
    2026-11-22 over warden/ and services/: no SET / SET SESSION, LISTEN, session-level advisory
    locks (only pg_advisory_xact_lock), PREPARE / DECLARE ... WITH HOLD or temp tables; search_path
    is a startup parameter). asyncpg still rolls back an open transaction and drops listeners
    before calling this. Whoever adds session state must restore it or bring the reset back."""


async def create_pool(database_url: str, schema: str, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        database_url, min_size=1, max_size=size, timeout=10, command_timeout=30,
        server_settings={"search_path": schema, "application_name": f"warden-{schema}"},
        reset=_keep_session,
    )


async def open_database(database_url: str, schema: str, sets: list[MigrationSet], pool_size: int,
                        backoff: Backoff, stopping: asyncio.Event, *, migrate_first: bool = True) -> asyncpg.Pool:
    """Migrate `schema` and open its pool, waiting with backoff while the database is not reachable.

    With `migrate_first` off (WARDEN_MIGRATE_ON_START=false: `warden migrate` runs them, a Kubernetes Job),
    the service applies nothing: it waits, with the same backoff, until no migration of its own is pending.
    """
    while True:
        try:
            if migrate_first:
                await migrate(database_url, schema, sets)
            elif pending := await pending_migrations(database_url, schema, sets):
                if stopping.is_set():
                    raise MigrationsPending(f"stopped while {schema} waited for {len(pending)} migrations")
                log.warning("migrations pending: waiting for `warden migrate`",
                            extra={"schema": schema, "pending": pending, "delay_s": backoff.delay_s})
                await backoff.wait()
                continue
            return await create_pool(database_url, schema, pool_size)
        except Exception as exc:
            if not is_transient(exc) or stopping.is_set():
                raise
            log.warning("database not reachable, retrying",
                        extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s})
            await backoff.wait()


async def pending_migrations(database_url: str, schema: str, sets: list[MigrationSet]) -> list[str]:
    """The migrations not applied to `schema` yet (every one before the first run), without applying any;
    MigrationChanged if one that ran was edited since."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        table = await conn.fetchval("SELECT to_regclass($1)::text", f'"{schema}".schema_migrations')
        rows = await conn.fetch(f'SELECT * FROM "{schema}".schema_migrations') if table else []
    finally:
        await conn.close()
    done = {(r["component"], r["version"]): r.get("checksum") for r in rows}
    pending = []
    for migration_set in sets:
        for version, path in migration_set.files():
            key = (migration_set.component, version)
            if key not in done:
                pending.append(f"{migration_set.component}/{path.name}")
                continue
            checksum = hashlib.sha256(path.read_text().encode()).hexdigest()
            if done[key] is not None and done[key] != checksum:
                raise MigrationChanged(_changed_message(migration_set.component, path, done[key], checksum))
    return pending


class MigrationsPending(Exception):
    """The service was stopped while it waited for `warden migrate`."""


class MigrationChanged(ConfigurationError):
    """A migration that already ran was edited since: the schema may not be what the code expects."""


async def _check_unchanged(conn: asyncpg.Connection, component: str, done: asyncpg.Record, path: Path,
                           checksum: str) -> None:
    if done["checksum"] is None:  # applied before checksums were kept: this file is the reference from now on
        await conn.execute("UPDATE schema_migrations SET checksum = $3 WHERE component = $1 AND version = $2",
                           component, done["version"], checksum)
    elif done["checksum"] != checksum:
        raise MigrationChanged(_changed_message(component, path, done["checksum"], checksum))


def _changed_message(component: str, path: Path, recorded: str, checksum: str) -> str:
    return (f"migration {component}/{path.name} was edited after it ran (recorded sha256 {recorded[:12]}..., "
            f"file now {checksum[:12]}...): restore it and put the change in a new migration")


async def migrate(database_url: str, schema: str, sets: list[MigrationSet]) -> list[str]:
    """Create the schema and apply pending migrations; safe when replicas start together."""
    conn = await asyncpg.connect(database_url, timeout=10)
    applied: list[str] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"warden-migrate-{schema}")
            # Not CREATE SCHEMA IF NOT EXISTS: PostgreSQL checks CREATE on the database before it looks
            # for the schema, and a service's own role owns its schema but may not create any
            # (warden/runtime/roles.py).
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema):
                await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component text NOT NULL, version int NOT NULL, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
            )
            # The SHA-256 of the file as it ran: a migration edited afterwards is refused, not skipped.
            await conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text")
            for migration_set in sets:
                done = {r["version"]: r for r in await conn.fetch(
                    "SELECT version, name, checksum FROM schema_migrations WHERE component = $1",
                    migration_set.component)}
                for version, path in migration_set.files():
                    text = path.read_text()
                    checksum = hashlib.sha256(text.encode()).hexdigest()
                    if version in done:
                        await _check_unchanged(conn, migration_set.component, done[version], path, checksum)
                        continue
                    await conn.execute(text)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        migration_set.component, version, path.name, checksum)
                    applied.append(f"{migration_set.component}/{path.name}")
    finally:
        await conn.close()
    if applied:
        log.info("migrations applied", extra={"schema": schema, "migrations": applied})
    return applied
