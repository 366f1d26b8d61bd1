"""How a service declares itself: its schema, migrations, subscriptions and HTTP routes.

A service module builds one `Service`; the runtime does the rest (see runner.py).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from fastapi import FastAPI

from warden.contract.envelope import Envelope, EventRejected
from warden.contract.events import EVENT_TYPES, Payload, model_for
from warden.contract.structs import Untranslatable, struct_of
from warden.contract.topics import TOPICS, declaration_problems
from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet
from warden.runtime import tracing
from warden.runtime.outbox import OutboxRow, event_row
from warden.runtime.settings import ConfigurationError, Settings, require_connections
from warden.runtime.unit_of_work import UnitOfWork


@dataclass
class BatchState:
    """What a service's handlers learn once and reuse within one transaction: an authority, a key, the
    audit chain's tail. A service declares its own (a dataclass deriving from this one, `Service.batch_state`)
    and the runtime makes a new one for every transaction or savepoint it runs handlers in: one for the
    whole batch in the consumer's optimistic pass (one transaction, no savepoints), one per handler call
    in the replay with a savepoint per event, so nothing learnt in a rolled-back savepoint is reused.
    Hold only what stays true until then, and update what a handler's own writes change."""


@dataclass
class Context:
    """What a handler gets besides its event: the open transaction, the batch's state and an `emit`."""

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
    # The service's declared BatchState (Service.batch_state), for the life of this transaction or savepoint.
    state: Any = field(default_factory=BatchState)
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


E = TypeVar("E")


@dataclass(eq=False, slots=True)
class BatchItem(Generic[E]):
    """One event of a batch handler's call: its payload (`event`), its envelope, and what it emits or why
    it is refused. What an item emits carries its own trace and reaches the outbox only if it is not
    rejected; a rejected item is dead-lettered with its reason and its batch-mates go on."""

    event: E
    envelope: Envelope
    service: str
    # Emit within this item's own trace: when the call's items come from several (otherwise what the
    # call runs within, the item's trace or the consumer span made for it, is carried on).
    own_trace: bool = False
    outgoing: list[OutboxRow] = field(default_factory=list)
    rejection: EventRejected | None = None

    def emit(self, event: Payload) -> None:
        """Queue an event derived from this item (its model says its type and topic)."""
        if not self.own_trace:
            self.outgoing.append(event_row(self.service, event))
            return
        with tracing.within(self.envelope.trace, event_id=self.envelope.id):
            self.outgoing.append(event_row(self.service, event))

    def traced(self) -> AbstractContextManager:
        """`with item.traced():` what is built within carries this item's trace (when the call's items come
        from several; otherwise the call's own, as `emit` does)."""
        if not self.own_trace:
            return nullcontext()
        return tracing.within(self.envelope.trace, event_id=self.envelope.id)

    def reject(self, reason: str | EventRejected, error: str = "") -> None:
        """Refuse this item: dead-lettered with `reason` (or as the EventRejected given), whatever it emitted
        dropped. Only before anything was written for it: the handler's statements must leave it out (its
        batch-mates' effects commit)."""
        self.rejection = reason if isinstance(reason, EventRejected) else EventRejected(reason, error)
        self.outgoing.clear()


Handler = Callable[[Context, Any], Awaitable[None]]
BatchHandler = Callable[[Context, list[BatchItem]], Awaitable[None]]
RejectionHook = Callable[[Context, EventRejected], Awaitable[None]]
Prefetch = Callable[[Context, list[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One consumed topic and the handler for it: `handle` (one event) or `handle_batch` (set-based).

    `handle(ctx, event)` sees plain calls that tell the truth: its statements run when it makes
    them, on the batch's transaction, and see what earlier events of the batch wrote.

    `handle_batch(ctx, items)` is declared by work that is done set-based (one statement for many
    rows): in the consumer's optimistic pass it is called once per polled batch with the valid new
    events of this topic, in offset order, each an `BatchItem` (payload, envelope, its own `emit` and
    `reject`); `ctx` serves the whole call (its connection, state, `on_commit`, `emit_at_commit`).
    An item it rejects (`item.reject`) is dead-lettered alone with its reason and its batch-mates'
    effects commit; it must be rejected before anything is written for it. If the call raises
    anything, the batch is replayed event by event, where it is called with one item at a time,
    each in its own savepoint, so only the failing event is dead-lettered (EventRejected: with its
    reason; anything else: handler_error). A batch handler must therefore leave after one call with
    n items what n calls with one item each leave; it may rely on the rows of earlier calls being
    visible, and on nothing else carried between calls.

    `on_rejected` lets a service say something about an event bound for the DLQ
    (intake tells the authority its request was invalid); it runs in the same
    transaction as the DLQ write.

    `prefetch` reads, for a whole batch at once, what its handlers would each
    read (one set-based query instead of one per event) into the batch's state
    (`Context.state`). It runs in the consumer's optimistic pass only, in the
    batch's transaction before the handlers, with the valid new events of this
    topic in offset order. Handlers must work without it (the per-event replay
    does not call it), take an entry out of the state when they use it, and drop
    entries that their own writes make stale. Whatever it raises fails the batch
    as a handler would: it is replayed event by event.
    """

    topic: str
    handle: Handler | None = None
    on_rejected: RejectionHook | None = None
    prefetch: Prefetch | None = None
    handle_batch: BatchHandler | None = None
    # Read this topic to its end at start, before the consumer group consumes anything, and again before an
    # event rejected as UnknownYet is dead-lettered (consumer.CatchUp): for what every other event is checked
    # against, such as the authority registry.
    catch_up_first: bool = False
    # Which of the topic's events the service acts on, for a topic it reads only a few kinds of event from:
    # a test of the decoded envelope (its type, source or data), made before validation. An event it says
    # no to is acknowledged with nothing done (no validation, no inbox row, no handler, no dead letter) and
    # counted as `ignored`. Only for events the service would do nothing with, valid or not.
    wants: Callable[[Envelope], bool] | None = None
    # For a view of another service's progress that may lag behind it by this many seconds (what an
    # authority is shown of its requests): once a poll brings this topic's records, its partitions are
    # not fetched again until the interval has passed, so each fetch, batch and transaction carries more
    # of its events. 0: at once. Such a subscription is read by the service's views consumer
    # (Service.consumers), apart from the topics that gate an effect.
    read_every_s: float = 0.0
    # The handler itself makes a redelivered event a no-op, by a key of the event's own (moderation's reports:
    # reporter and report id, its table's primary key), so the topic's valid events take no inbox row: one
    # insert less per event, for a topic with a natural key and a high rate. Events rejected before the
    # handler, or dead-lettered by it, still claim their inbox row, so a redelivery is dead-lettered once.
    deduplicates: bool = False
    # Its handlers receive each payload as its model's msgspec struct (warden/contract/structs.py: the same
    # fields, checked by the same rules, built several times faster than the pydantic model), for a topic
    # with a high rate whose models translate. The struct has the model's attributes, not its methods.
    structs: bool = False


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
    # What its handlers learn once per transaction (a BatchState dataclass): made anew by the runtime for
    # each batch and for each handler call of a replay.
    batch_state: Callable[[], BatchState] = BatchState
    # The most records a consumer batch takes, when WARDEN_BATCH_MAX_RECORDS does not say (None: the
    # runtime's default). A batch never waits to fill: this only bounds what a backlog hands over at once.
    batch_max_records: int | None = None
    # How many consumer batches may be in flight at once, each in its own transaction on its own connection
    # (consumer.py), when WARDEN_BATCHES_IN_FLIGHT does not say (None: the runtime's default, one). More than
    # one only where the handlers' effects are right in any commit order of different batches: what must
    # happen in order is then ordered by their own locks.
    batches_in_flight: int | None = None

    def batch_size(self, settings: Settings) -> int:
        """The consumer's batch bound: WARDEN_BATCH_MAX_RECORDS if set, else this service's, else the default."""
        return self._tuned(settings, "batch_max_records")

    def in_flight(self, settings: Settings) -> int:
        """The consumer's batches in flight: WARDEN_BATCHES_IN_FLIGHT if set, else this service's, else one."""
        return self._tuned(settings, "batches_in_flight")

    def _tuned(self, settings: Settings, name: str) -> int:
        own = getattr(self, name)
        return getattr(settings, name) if name in settings.model_fields_set or own is None else own

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
        it consumes only what lists it as a consumer, reads as views what lists it as a viewer, and
        emits only on topics it may write."""
        unknown = [model.__name__ for model in self.emits if model not in EVENT_TYPES]
        problems = [f"emits {name}, which is not an event of the contract" for name in unknown]
        problems += declaration_problems(self.name, [s.topic for s in self.subscriptions],
                                         [EVENT_TYPES[m] for m in self.emits if m in EVENT_TYPES],
                                         [s.topic for s in self.subscriptions if s.read_every_s])
        for subscription in (s for s in self.subscriptions if s.structs and s.topic in TOPICS):
            for event_type in sorted(TOPICS[subscription.topic].event_types):
                try:
                    struct_of(model_for(event_type))
                except Untranslatable as exc:
                    problems.append(f"{subscription.topic} is read as structs, but {exc}")
        if problems:
            raise ConfigurationError(f"{self.name} does not match the topic registry: " + "; ".join(problems))

    def consumers(self) -> tuple[Service, Service | None]:
        """What each of the service's consumer loops reads: the subscriptions that gate its effects, and
        its views (those with `read_every_s`), or None for a service without views or with nothing else.
        The views have a consumer, a consumer group (Settings.views_group_id) and transactions of their
        own: a view's batch carries a quarter of a second of another service's events (statuses, sealed
        packages), and no event that gates an effect waits in that transaction, or behind it."""
        views = [s for s in self.subscriptions if s.read_every_s]
        effects = [s for s in self.subscriptions if not s.read_every_s]
        if not views or not effects:
            return self, None
        return replace(self, subscriptions=effects), replace(self, subscriptions=views)

    def subscription(self, topic: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.topic == topic:
                return sub
        raise KeyError(topic)
