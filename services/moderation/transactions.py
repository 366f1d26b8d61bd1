"""The moderators' way to change state over HTTP: one transaction per decision, its events in the outbox."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import HTTPException

from warden.runtime.service import ServiceContext

from moderation.handlers import Effects


class Transactions:
    """Bound to the running service (its pool exists once the database is reached)."""

    def __init__(self, runtime: ServiceContext) -> None:
        self.runtime = runtime

    @property
    def pool(self) -> asyncpg.Pool:
        if self.runtime.pool is None:
            raise HTTPException(503, "the database is not reachable yet")
        return self.runtime.pool

    async def run_in_transaction(self, action: Callable[[asyncpg.Connection, Effects], Awaitable[Any]]) -> Any:
        """`action(conn, effects)` in one unit of work: its outbox rows committed with it, metrics, hooks and
        the relay after commit."""
        effects = Effects()
        async with self.runtime.unit_of_work() as uow:
            result = await action(uow.conn, effects)
            uow.add(effects.rows)
            for hook in effects.after_commit:
                uow.on_commit(hook)
        return result
