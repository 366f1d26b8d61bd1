"""Inserts "if new" (`INSERT … ON CONFLICT DO NOTHING RETURNING …`), one round trip per batch.

A handler's main write is usually such an insert: its row, or nothing when an earlier
delivery or another replica wrote it first. Run one by one, each costs a round trip and
a statement of its own. In the consumer's optimistic pass they are deferred instead:
assumed to write, and sent together after the handlers (`Connection.fetchmany`, one
round trip per run of the same statement). The rare one that writes nothing fails the
batch, which is then replayed event by event, where each insert runs at once and its
handler sees the truth.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

# (statement, *args) -> True if the statement wrote its row (returned one), False if the row was there.
InsertNew = Callable[..., Awaitable[bool]]


async def insert_now(conn: asyncpg.Connection, statement: str, *args: Any) -> bool:
    return await conn.fetchrow(statement, *args) is not None


class NotInserted(Exception):
    """A deferred insert found its row already there: its handler was told otherwise."""


class DeferredInserts:
    """The inserts of one optimistic pass, in the order the handlers made them."""

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[tuple[Any, ...]]]] = []

    def add(self, statement: str, args: tuple[Any, ...]) -> None:
        # Only neighbours are merged, so inserts that depend on earlier ones still come after them.
        if self._runs and self._runs[-1][0] == statement:
            self._runs[-1][1].append(args)
        else:
            self._runs.append((statement, [args]))

    def __len__(self) -> int:
        return sum(len(arg_sets) for _, arg_sets in self._runs)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Send what is pending; NotInserted if any of it wrote nothing (the transaction must not commit)."""
        runs, self._runs = self._runs, []
        for statement, arg_sets in runs:
            written = await conn.fetchmany(statement, arg_sets)
            if len(written) != len(arg_sets):
                raise NotInserted(f"{len(arg_sets) - len(written)} of {len(arg_sets)} deferred inserts found "
                                  "their row already there")
