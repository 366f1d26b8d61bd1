"""The unit of work: one state change and the events it emits, committed together or not at all.

Consumer batches, HTTP routes and jobs all change state the same way:

    async with runtime.unit_of_work() as uow:
        await uow.conn.execute(...)          # the state change, in the transaction
        uow.emit(SomeEvent(...))             # its events: outbox rows, in the same transaction
        uow.on_commit(lambda: ...)           # anything that must wait for the commit
        uow.emit_at_commit(key, build)       # an event summarising the transaction, built last

On leaving the block without an exception the events registered with `emit_at_commit` are
built, the outbox rows are written and the transaction commits; then, and only then, the emitted events are counted, the on-commit hooks run and
the rows are handed to the outbox relay (which sends them without scanning the table). An
exception rolls everything back: nothing is counted, nothing is sent.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from warden.runtime import metrics
from warden.runtime.database import after_transient
from warden.contract.events import Payload
from warden.runtime.outbox import OutboxRow, Verbatim, event_row, write_rows

HandOver = Callable[[list[int], list[OutboxRow]], None]


class NotReady(RuntimeError):
    """The service has not reached its database yet (HTTP: 503)."""


class UnitOfWork:
    def __init__(self, service: str, pool: asyncpg.Pool | None, hand_over: HandOver | None = None):
        if pool is None:
            raise NotReady("the database is not reachable yet")
        self.service = service
        self.pool = pool
        self.hand_over = hand_over
        self.outgoing: list[OutboxRow] = []
        self.hooks: list[Callable[[], None]] = []
        self.at_commit: dict[Any, Callable[[], Payload | None]] = {}
        self.conn: asyncpg.Connection | None = None
        self._transaction = None

    def emit(self, event: Payload | Verbatim) -> None:
        """Queue an event of the contract (its model says its type and topic)."""
        self.outgoing.append(event_row(self.service, event))

    def add(self, rows: list[OutboxRow]) -> None:
        """Queue outbox rows built elsewhere (dead letters, a handler's emitted events)."""
        self.outgoing.extend(rows)

    def on_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)

    def emit_at_commit(self, key: Any, build: Callable[[], Payload | None]) -> None:
        """Emit `build()` (unless None) just before commit, once per key; a later call with the same key
        replaces the earlier one."""
        self.at_commit[key] = build

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self.pool.acquire()
        try:
            self._transaction = self.conn.transaction()
            await self._transaction.start()
        except BaseException:
            self.conn.terminate()  # BEGIN failed: the connection is broken, and the pool opens a new one
            await self.pool.release(self.conn)
            raise
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        committed = False
        try:
            if exc_type is None:
                try:
                    for build in self.at_commit.values():
                        if (event := build()) is not None:
                            self.emit(event)
                    ids = await write_rows(self.conn, self.outgoing)
                except BaseException as failed:
                    await after_transient(self.pool, failed)
                    await self._transaction.rollback()
                    raise
                await self._transaction.commit()
                committed = True
            else:
                await after_transient(self.pool, exc)
                try:
                    await self._transaction.rollback()
                except Exception:  # a broken connection: the exception in flight says more
                    self.conn.terminate()
        finally:
            await self.pool.release(self.conn)
        if committed:
            self._after_commit(ids)

    def _after_commit(self, ids: list[int]) -> None:
        metrics.count_outgoing(self.outgoing)
        for hook in self.hooks:
            hook()
        if self.outgoing and self.hand_over is not None:
            self.hand_over(ids, self.outgoing)
