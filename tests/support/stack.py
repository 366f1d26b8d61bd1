"""Running services in-process against the session's real broker and Postgres."""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from warden.embedded import free_port
from warden.runtime.runner import Runtime, load_service
from warden.runtime.settings import Settings


def service_settings(bootstrap: str, database_url: str, **overrides) -> Settings:
    """Settings for one test: its own consumer groups, a free HTTP port, fast retries."""
    values = dict(kafka_bootstrap_servers=bootstrap, database_url=database_url, http_host="127.0.0.1",
                  http_port=free_port(), group_prefix=f"test-{uuid.uuid4().hex[:8]}",
                  retry_initial_s=0.1, retry_max_s=1.0, poll_timeout_ms=100, embedded_defaults=True)
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(name: str, settings: Settings, ready_timeout: float = 30) -> AsyncIterator[Runtime]:
    """Start a service as a task; wait until it is ready; stop it (SIGTERM path) on exit."""
    runtime = Runtime(load_service(name), settings)
    task = asyncio.create_task(runtime.run())
    deadline = time.monotonic() + ready_timeout
    while not all(runtime.readiness().values()):
        if task.done():
            task.result()  # raises the startup failure
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not ready after {ready_timeout}s: {runtime.readiness()}")
        await asyncio.sleep(0.05)
    try:
        yield runtime
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, timeout=60)


async def wait_for_authority(database_url: str, schema: str, authority_id: str, timeout: float = 30) -> None:
    """Block until the service's registry projection knows the authority.

    A fresh consumer group reads `legal.authorities` and the request topic side by
    side; a test registering an authority right before its request must wait for
    the projection, as an operator registers authorities long before they submit.
    """
    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(database_url)
            try:
                if await conn.fetchval(f'SELECT 1 FROM "{schema}".authorities WHERE authority_id = $1',
                                       authority_id):
                    return
            finally:
                await conn.close()
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{schema} never learned authority {authority_id}")
        await asyncio.sleep(0.1)
