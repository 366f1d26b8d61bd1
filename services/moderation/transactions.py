"""The moderators' way to change state over HTTP: one transaction per decision, its events in the outbox."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import HTTPException

from warden.runtime import metrics
from warden.runtime.outbox import write_rows

from moderation.handlers import SERVICE, Effects


class Transactions:
    """Bound to the running service (its pool exists once the database is reached)."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    @property
    def pool(self) -> asyncpg.Pool:
        if self.runtime.pool is None:
            raise HTTPException(503, "the database is not reachable yet")
        return self.runtime.pool

    async def run_in_transaction(self, action: Callable[[asyncpg.Connection, Effects], Awaitable[Any]]) -> Any:
        """`action(conn, effects)` in one transaction with its outbox rows; metrics and the relay after commit."""
        effects = Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            result = await action(conn, effects)
            await write_rows(conn, effects.rows)
        metrics.count_outgoing(SERVICE, effects.rows)
        for hook in effects.after_commit:
            hook()
        if effects.rows and self.runtime.relay is not None:
            self.runtime.relay.wakeup.set()
        return result
