"""How a service declares itself: its schema, migrations, subscriptions and HTTP routes.

A service module builds one `Service`; the runtime does the rest (see runner.py).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from fastapi import FastAPI

from warden.contract.envelope import Envelope, EventRejected
from warden.contract.events import EVENT_TYPES, Payload
from warden.contract.topics import declaration_problems
from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet
from warden.runtime.inserts import DeferredInserts, insert_now
from warden.runtime.outbox import OutboxRow, event_row
from warden.runtime.settings import ConfigurationError, Settings, require_connections
from warden.runtime.unit_of_work import UnitOfWork


@dataclass
class Context:
    """What a handler gets besides its event: the open transaction and an `emit`."""

    service: str
    conn: asyncpg.Connection
    envelope: Envelope | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw_value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    outgoing: list[OutboxRow] = field(default_factory=list)
    # What handlers learnt and may reuse (an authority, a key, the audit chain's tail): shared by
    # the whole batch in the consumer's optimistic pass (one transaction, no savepoints), one per
    # handler call when replaying with a savepoint per event; discarded with what it was learnt in.
    # Only cache what stays true until then, and drop an entry when a handler changes what it caches.
    cache: dict[Any, Any] = field(default_factory=dict)
    # The optimistic pass's deferred inserts, shared by the batch (insert_new); None: insert at once.
    deferred: DeferredInserts | None = None
    # The running service's settings (warden/runtime/settings.py); None outside a runtime.
    settings: Any = None
    # What to run once this transaction has committed (on_commit); dropped with a rollback.
    committed: list[Callable[[], None]] = field(default_factory=list)
    # Events built when the transaction is about to commit (emit_at_commit), by key.
    at_commit: dict[Any, Callable[[], Payload | None]] = field(default_factory=dict)

    @property
    def binary_mode(self) -> bool:
        """The record carries its CloudEvent attributes in `ce_*` headers."""
        return any(name.lower().startswith("ce_") for name, _ in self.headers)

    async def insert_new(self, statement: str, *args: Any) -> bool:
        """Run an `INSERT … ON CONFLICT DO NOTHING RETURNING …` that writes one row or none: True if it wrote.

        In the consumer's optimistic pass it is deferred to the end of the batch and True is
        assumed (warden/runtime/inserts.py); if it then writes nothing, the batch is replayed
        event by event and this call answers truly. Until then the row is not visible: a
        handler that reads what earlier events of its batch inserted calls `flush_inserts` first.
        """
        if self.deferred is None:
            return await insert_now(self.conn, statement, *args)
        self.deferred.add(statement, args)
        return True

    async def flush_inserts(self) -> None:
        """Send the batch's deferred inserts now, so that the next reads see them."""
        if self.deferred is not None:
            await self.deferred.flush(self.conn)

    def emit(self, event: Payload) -> None:
        """Queue an event of the contract (its model says its type and topic); it reaches the outbox in
        this event's transaction, or not at all."""
        self.outgoing.append(event_row(self.service, event))

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` (a metric, say) once this event's transaction has committed; never if it rolls back."""
        self.committed.append(hook)

    def emit_at_commit(self, key: Any, build: Callable[[], Payload | None]) -> None:
        """Emit the event `build()` returns (if any) when this event's transaction is about to commit:
        once per transaction and key, however many handlers of the batch asked (the last one asking is
        built). For what summarises the transaction, such as an audit chain's head."""
        self.at_commit[key] = build


Handler = Callable[[Context, Any], Awaitable[None]]
BatchHandler = Callable[[Context, list[Any]], Awaitable[None]]
RejectionHook = Callable[[Context, EventRejected], Awaitable[None]]
Prefetch = Callable[[Context, list[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One consumed topic and the handler for it: `handle` (one event) or `handle_batch` (set-based).

    `handle_batch` is for work that is done set-based (one statement for many rows):
    in the consumer's optimistic pass it is called once per polled batch with the
    valid new events of this topic, in offset order, with the context of the first
    of them (its `emit`, `on_commit`, `cache` and deferred inserts serve the whole
    call). If it raises, the batch is replayed event by event, where it is called
    with one event at a time, each in its own savepoint, so only the failing event
    is dead-lettered (EventRejected: with its reason; anything else: handler_error).
    A batch handler must therefore leave after one call with n events what n calls
    with one event each leave; it may rely on the rows of earlier calls being
    visible, and on nothing else carried between calls.

    `on_rejected` lets a service say something about an event bound for the DLQ
    (intake tells the authority its request was invalid); it runs in the same
    transaction as the DLQ write.

    `prefetch` reads, for a whole batch at once, what its handlers would each
    read (one set-based query instead of one per event) into `Context.cache`.
    It runs in the consumer's optimistic pass only, in the batch's transaction
    before the handlers, with the valid new events of this topic in offset
    order. Handlers must work without it (the per-event replay does not call
    it), take an entry out of the cache when they use it, and drop entries that
    their own writes make stale. Whatever it raises fails the batch as a
    handler would: it is replayed event by event.
    """

    topic: str
    handle: Handler | None = None
    on_rejected: RejectionHook | None = None
    prefetch: Prefetch | None = None
    handle_batch: BatchHandler | None = None
    # Read this topic to its end at start, before the consumer group consumes anything (consumer.catch_up):
    # for what every other event is checked against, such as the authority registry.
    catch_up_first: bool = False


class ServiceContext(Protocol):
    """What a service's HTTP routes and background jobs get: the running service (runner.Runtime)."""

    service: Service
    settings: Settings
    pool: asyncpg.Pool | None  # None until the database is reached
    stopping: asyncio.Event

    def unit_of_work(self) -> UnitOfWork:
        """`async with ctx.unit_of_work() as uow:` one transaction, its events to the outbox, the relay told
        on commit (warden/runtime/unit_of_work.py)."""


@dataclass(frozen=True)
class Service:
    name: str
    schema: str
    subscriptions: list[Subscription]
    migrations: list[MigrationSet]
    routes: Callable[[FastAPI, ServiceContext], None] | None = None
    background: list[Callable[[ServiceContext], Awaitable[None]]] = field(default_factory=list)
    # The contract models of the events it emits (checked against the topic registry at start).
    emits: tuple[type[Payload], ...] = ()
    # Run with the settings before anything starts; each raises ConfigurationError to refuse.
    startup_checks: list[Callable[[Any], None]] = field(default_factory=list)
    # The most records a consumer batch takes, when WARDEN_BATCH_MAX_RECORDS does not say (None: the
    # runtime's default). A batch never waits to fill: this only bounds what a backlog hands over at once.
    batch_max_records: int | None = None

    def batch_size(self, settings: Settings) -> int:
        """The consumer's batch bound: WARDEN_BATCH_MAX_RECORDS if set, else this service's, else the default."""
        if "batch_max_records" in settings.model_fields_set or self.batch_max_records is None:
            return settings.batch_max_records
        return self.batch_max_records

    @property
    def migration_sets(self) -> list[MigrationSet]:
        """What its schema holds: the runtime's tables (inbox, outbox, dead letters), then its own."""
        return [RUNTIME_MIGRATIONS, *self.migrations]

    def check(self, settings: Any) -> None:
        """Everything that must hold before the service starts: a ConfigurationError naming every
        setting missing or wrong at once, not one per attempt."""
        problems = []
        for check in [self.check_contract, require_connections, *self.startup_checks]:
            try:
                check(settings)
            except ConfigurationError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigurationError("; ".join(problems))

    def check_contract(self, _settings: Any = None) -> None:
        """The service's subscriptions and emitted events against the topic registry (startup check):
        it consumes only what lists it as a consumer and emits only on topics it may write."""
        unknown = [model.__name__ for model in self.emits if model not in EVENT_TYPES]
        problems = [f"emits {name}, which is not an event of the contract" for name in unknown]
        problems += declaration_problems(self.name, [s.topic for s in self.subscriptions],
                                         [EVENT_TYPES[m] for m in self.emits if m in EVENT_TYPES])
        if problems:
            raise ConfigurationError(f"{self.name} does not match the topic registry: " + "; ".join(problems))

    def subscription(self, topic: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.topic == topic:
                return sub
        raise KeyError(topic)
