"""The batch kernel: a batch of records in, one transaction of effects out (records from any source).

One unit of work per batch (unit_of_work.py) holds, for every event, its inbox row, the
handler's state changes and its outgoing events. Handlers first run back to back in that
transaction (the optimistic pass: no savepoints, one BatchState shared by the batch); if any
handler fails, the transaction is rolled back and the batch is replayed in a new one with a
savepoint and a new BatchState per event, so only the failing event is dead-lettered
(dead_letters.py). A subscription with a batch handler (`Subscription.handle_batch`) gets its
topic's valid new events of the batch as Items in one call in the optimistic pass (an item it
rejects is dead-lettered there, its batch-mates go on), and one call per event in the replay.
Events already in the inbox (inbox.py) are dropped. An event about to be dead-lettered as
UnknownYet (what the registry may not have brought yet) rolls the batch back instead: the
catch-up topics are read to their end (`catch_up`) and the batch handled again, once. Metrics
are counted and the outbox rows handed to the relay only once the transaction has committed.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from warden.contract.envelope import Envelope, EventRejected, UnknownYet, decode, decode_with_payload
from warden.contract.events import model_for
from warden.contract.structs import payload_from_json, payload_struct
from warden.contract.topics import TOPICS
from warden.runtime import metrics, tracing
from warden.runtime.database import is_transient
from warden.runtime.dead_letters import dlq_row, keep_dead_letter, mark_dead_lettered, oversized_parts
from warden.runtime.inbox import claim_fresh, claim_in_inbox
from warden.runtime.logs import raised_at
from warden.runtime.service import BatchState, Context, BatchItem, Service
from warden.runtime.settings import Settings
from warden.runtime.unit_of_work import HandOver, UnitOfWork

log = logging.getLogger(__name__)


def describe_validation_error(exc: ValidationError) -> str:
    """Field paths and messages only: pydantic's default text would echo the input."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts)[:500]


@dataclass
class Decoded:
    record: ConsumerRecord
    envelope: Envelope | None = None
    payload: object | None = None
    rejection: EventRejected | None = None
    ignored: bool = False  # the subscription does not want it (Subscription.wants): nothing is done
    caught_up: bool = False  # the catch-up topics were read to their end since it was read: UnknownYet is final

    @property
    def inbox_key(self) -> tuple[str, str]:
        if self.envelope is not None:
            return self.envelope.source, self.envelope.id
        r = self.record
        return f"kafka:{r.topic}/{r.partition}", str(r.offset)


def decode_record(record: ConsumerRecord, wants: Callable[[Envelope], bool] | None = None, *,
                  structs: bool = False) -> Decoded:
    """`structs`: the payload as its model's msgspec struct (Subscription.structs), else as the model. A struct
    is decoded straight from the record's JSON where it can be (its envelope's data built only if read); any
    other record, or one the subscription does not want, is decoded again step by step, which decides."""
    topic = TOPICS[record.topic]
    decoded = Decoded(record)
    try:
        both = decode_with_payload(record.value, record.headers, payload_from_json) if structs else None
        if both is not None and both[0].type in topic.event_types and (wants is None or wants(both[0])):
            decoded.envelope, decoded.payload = both
            return decoded
        envelope = decode(record.value, record.headers, allow_binary=topic.inbound)
        decoded.envelope = envelope
        if envelope.type not in topic.event_types:
            raise EventRejected("unknown_type", f"{record.topic} does not carry events of this type")
        if wants is not None and not wants(envelope):
            decoded.ignored = True
            return decoded
        try:
            decoded.payload = (payload_struct(envelope.type, envelope.data) if structs
                               else model_for(envelope.type).model_validate(envelope.data))
        except ValidationError as exc:
            raise EventRejected("invalid_data", describe_validation_error(exc)) from None
    except EventRejected as rejection:
        decoded.rejection = rejection
    return decoded


class _Replay(Exception):
    """A handler failed in the optimistic pass: roll the batch's transaction back and replay it event by event."""


class _CatchUp(Exception):
    """An event was rejected as UnknownYet before the catch-up topics were read to their end since it was read:
    roll the batch's transaction back, read them, and handle the batch again."""


class BatchProcessor:
    """Handles batches of records for one service: decode, inbox, handlers, dead letters, outbox, metrics.

    It neither polls nor commits offsets: the consumer loop (consumer.py) does, and any other
    source of records (a test, a replay) can call `process` the same way. `hand_over` receives
    each committed batch's outbox rows (the relay's `hand_over`), or None to leave them to scans.
    """

    def __init__(self, service: Service, pool: asyncpg.Pool, *, hand_over: HandOver | None = None,
                 settings: Settings | None = None):
        self.service = service
        self.pool = pool
        self.hand_over = hand_over
        # Reads the `catch_up_first` topics to their end (consumer.CatchUp, set by the runtime that owns its
        # reader); None: UnknownYet dead-letters at once.
        self.catch_up: Callable[[], Awaitable[object]] | None = None
        self.settings = settings if settings is not None else Settings()
        self._subscriptions = {s.topic: s for s in service.subscriptions}  # looked up per record: a dict, once

    def decode(self, records: list[ConsumerRecord]) -> list[Decoded]:
        """Each record's envelope and payload, or why it will be dead-lettered, or that its subscription does
        not want it (no I/O: done ahead of time)."""
        subscriptions = self._subscriptions
        return [decode_record(r, subscriptions[r.topic].wants, structs=subscriptions[r.topic].structs) for r in records]

    async def process(self, records: list[ConsumerRecord], *, decoded: list[Decoded] | None = None) -> None:
        """Handle the records in one committed transaction (two when the optimistic pass fails), or raise.
        `decoded`: the records already decoded (`decode`), in the same order."""
        started = time.perf_counter()
        items = decoded if decoded is not None else self.decode(records)
        try:
            outcomes = await self._attempt(items)
        except _CatchUp:  # rolled back: once the registry is read to its end, the rejection is final
            log.info("event unknown yet: catch-up topics read before the batch is handled again",
                     extra={"events": len(items)})
            await self.catch_up()
            for item in items:
                item.caught_up = True
            outcomes = await self._attempt(items)
        # Metrics only after commit: a rolled-back batch will be counted when it is retried.
        metrics.count_consumed(outcomes, (time.perf_counter() - started) / max(len(records), 1))

    async def _attempt(self, items: list[Decoded]) -> list[tuple[str, str]]:
        try:
            return await self._process(items, isolated=False)
        except _Replay:  # that transaction is rolled back: again, in a new one, a savepoint per event
            return await self._process(items, isolated=True)

    async def _process(self, items: list[Decoded], *, isolated: bool) -> list[tuple[str, str]]:
        """One unit of work: inbox claim, handlers, outbox rows, commit. The outcome of each event, by topic."""
        outcomes: list[tuple[str, str]] = [(item.record.topic, "ignored") for item in items if item.ignored]
        items = [item for item in items if not item.ignored]
        if not items:
            return outcomes
        async with UnitOfWork(self.service.name, self.pool, self.hand_over) as uow:
            conn = uow.conn
            fresh = await claim_fresh(conn, items, self._deduplicated)
            claimed = {id(item) for item in fresh}
            outcomes += [(item.record.topic, "duplicate") for item in items if id(item) not in claimed]
            # The optimistic pass's state lives as long as its transaction; the replay makes one per call.
            state = None if isolated else self.service.batch_state()
            if state is not None:
                await self._prefetch(conn, fresh, state)
            # Optimistic pass: each batch handler's events, handed over together where its topic first appears.
            batches = {} if isolated else self._batches(fresh)
            handled: dict[int, str] = {}
            for item in fresh:
                if id(item) in handled:
                    continue
                group = batches.pop(item.record.topic, None) if item.rejection is None else None
                if group:
                    handled.update(await self._handle_batch(uow, group, state))
                else:
                    handled[id(item)] = await self._handle(uow, item, isolated=isolated, state=state)
            outcomes += [(item.record.topic, handled[id(item)]) for item in fresh]
        return outcomes

    def _deduplicated(self, item: Decoded) -> bool:
        """A valid event whose handler drops redeliveries itself (Subscription.deduplicates): no inbox claim."""
        return item.rejection is None and self._subscriptions[item.record.topic].deduplicates

    def _batches(self, fresh: list[Decoded]) -> dict[str, list[Decoded]]:
        """The valid events of each topic whose subscription has a batch handler, in offset order."""
        batches: dict[str, list[Decoded]] = {}
        for item in fresh:
            if item.rejection is None and self._subscriptions[item.record.topic].handle_batch is not None:
                batches.setdefault(item.record.topic, []).append(item)
        return batches

    async def _handle_batch(self, uow: UnitOfWork, group: list[Decoded], state: BatchState) -> dict[int, str]:
        """A batch handler's call in the optimistic pass: the outcome of each of its events. The items it
        rejected are dead-lettered; any failure -> _Replay (each event alone)."""
        subscription = self._subscriptions[group[0].record.topic]
        ctx = self._context(uow.conn, group[0], state)
        first_trace = group[0].envelope.trace
        own_traces = any(d.envelope.trace != first_trace for d in group)
        name = self.service.name
        calls = [BatchItem(decoded.payload, decoded.envelope, name, own_traces) for decoded in group]
        outcomes: dict[int, str] = {}
        with self._traced(group):
            try:
                await subscription.handle_batch(ctx, calls)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.info("batch handler failed, batch replayed event by event", extra={
                    "topic": group[0].record.topic, "events": len(group), "error_type": type(exc).__name__})
                raise _Replay() from None
            self._keep(uow, ctx)
            for decoded, call in zip(group, calls):
                if call.rejection is None:
                    if call.outgoing:
                        uow.add(call.outgoing)
                    outcomes[id(decoded)] = "processed"
                elif len(group) == 1:  # the call's span is the event's
                    outcomes[id(decoded)] = await self._dead_letter(uow, decoded, call.rejection, isolated=False,
                                                                    state=state)
                else:
                    with self._traced([decoded]):
                        outcomes[id(decoded)] = await self._dead_letter(uow, decoded, call.rejection,
                                                                        isolated=False, state=state)
        return outcomes

    async def _prefetch(self, conn: asyncpg.Connection, fresh: list[Decoded], state: BatchState) -> None:
        """Each subscription's set-based read for the batch (Subscription.prefetch), into the batch's state."""
        by_topic: dict[str, list[Decoded]] = {}
        for item in fresh:
            if item.rejection is None:
                by_topic.setdefault(item.record.topic, []).append(item)
        for topic, items in by_topic.items():
            prefetch = self._subscriptions[topic].prefetch
            if prefetch is None:
                continue
            try:
                await prefetch(self._context(conn, items[0], state), [i.payload for i in items])
            except Exception as exc:
                if is_transient(exc):
                    raise
                # Correct either way (handlers read for themselves in the replay), but slower: say so.
                log.warning("prefetch failed, batch replayed event by event", extra={
                    "topic": topic, "error_type": type(exc).__name__, "where": raised_at(exc)})
                raise _Replay() from None

    async def _handle(self, uow: UnitOfWork, item: Decoded, *, isolated: bool = True,
                      state: BatchState | None = None) -> str:
        """Run one event's handler within its trace context; `isolated=False` (optimistic pass): no savepoint,
        any failure -> _Replay.

        `state`: the optimistic pass's BatchState, shared by the batch; isolated (None), each handler
        and rejection hook call gets its own, so nothing learnt in a rolled-back savepoint is reused."""
        with self._traced([item]):
            return await self._handle_traced(uow, item, isolated=isolated, state=state)

    async def _handle_traced(self, uow: UnitOfWork, item: Decoded, *, isolated: bool,
                             state: BatchState | None) -> str:
        conn, record = uow.conn, item.record
        subscription = self._subscriptions[record.topic]
        rejection = item.rejection
        if rejection is None:
            ctx = self._context(conn, item, state)
            try:
                if isolated:
                    async with conn.transaction():
                        await self._call_handler(subscription, ctx, item)
                else:
                    await self._call_handler(subscription, ctx, item)
                self._keep(uow, ctx)
                return "processed"
            except EventRejected as exc:
                if not isolated:
                    raise _Replay() from None
                rejection = exc
            except Exception as exc:
                if is_transient(exc):
                    raise
                if not isolated:
                    raise _Replay() from None
                # A handler bug must not block the partition: park the event, keep the evidence.
                log.error("handler failed", extra={
                    "topic": record.topic, "partition": record.partition, "offset": record.offset,
                    "error_type": type(exc).__name__, "where": raised_at(exc)})
                rejection = EventRejected("handler_error", f"{type(exc).__name__} in {raised_at(exc)}")
        return await self._dead_letter(uow, item, rejection, isolated=isolated, state=state)

    async def _dead_letter(self, uow: UnitOfWork, item: Decoded, rejection: EventRejected, *, isolated: bool,
                           state: BatchState | None) -> str:
        """The event to the DLQ with its reason, after the subscription's rejection hook. An event that took no
        inbox claim (Subscription.deduplicates) claims its row now: if it cannot, a copy of it was dead-lettered
        before (this is a redelivery), and one letter is enough."""
        conn, record = uow.conn, item.record
        if isinstance(rejection, UnknownYet) and not item.caught_up and self.catch_up is not None:
            raise _CatchUp()
        if self._deduplicated(item) and item.inbox_key not in await claim_in_inbox(conn, [item]):
            return "duplicate"
        subscription = self._subscriptions[record.topic]
        log.info("event dead-lettered", extra={
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "reason": rejection.reason, "error": rejection.error})
        tracing.mark_dead_lettered(rejection.reason)
        if subscription.on_rejected is not None:
            ctx = self._context(conn, item, state)
            try:
                if isolated:
                    async with conn.transaction():
                        await subscription.on_rejected(ctx, rejection)
                else:
                    await subscription.on_rejected(ctx, rejection)
                self._keep(uow, ctx)
            except Exception as exc:
                if is_transient(exc):
                    raise
                if not isolated:
                    raise _Replay() from None
                log.error("rejection hook failed", extra={"error_type": type(exc).__name__, "where": raised_at(exc)})
        uow.add([dlq_row(self.service.name, record, rejection)])
        await mark_dead_lettered(conn, item.inbox_key)
        if oversized_parts(record):
            await keep_dead_letter(conn, record, rejection.reason)
        return "dead_lettered"

    def _traced(self, items: list[Decoded]) -> tracing.within:
        """The handler call for `items` within their trace context: what it emits carries it, and its logs
        name it; when tracing is on, a consumer span whose parent it is (linked to each, for a batch)."""
        if len(items) == 1 and not tracing.enabled():  # the common case, kept cheap: carry, nothing else
            envelope = items[0].envelope
            return tracing.within(envelope.trace, event_id=envelope.id) if envelope else tracing.within(None)
        carried = [i.envelope.trace if i.envelope is not None else None for i in items]
        traces = set(carried) - {None}
        single = carried[0] if len(set(carried)) == 1 else None  # the same for all (a batch of one, say)
        event_id = items[0].envelope.id if len(items) == 1 and items[0].envelope is not None else None
        if not tracing.enabled():
            return tracing.within(single, event_id=event_id)
        topic = items[0].record.topic
        attributes = {"messaging.system": "kafka", "messaging.operation.type": "process",
                      "messaging.destination.name": topic, "warden.service": self.service.name,
                      "messaging.batch.message_count": len(items)}
        if len(items) == 1:
            r = items[0].record
            attributes.update({"messaging.destination.partition.id": str(r.partition),
                               "messaging.kafka.offset": r.offset})
            if event_id is not None:
                attributes.update({"messaging.message.id": event_id, "cloudevents.event_id": event_id,
                                   "cloudevents.event_type": items[0].envelope.type,
                                   "cloudevents.event_source": items[0].envelope.source})
        return tracing.within(single, event_id=event_id, span=f"process {topic}", kind="CONSUMER",
                              attributes=attributes, links=() if single else traces, retried=(_Replay, _CatchUp))

    @staticmethod
    def _keep(uow: UnitOfWork, ctx: Context) -> None:
        """What a handler emitted and wants at and after commit, into the batch's unit of work."""
        uow.add(ctx.outgoing)
        for hook in ctx.committed:
            uow.on_commit(hook)
        for key, build in ctx.at_commit.items():
            uow.emit_at_commit(key, build)

    async def _call_handler(self, subscription, ctx: Context, item: Decoded) -> None:
        if subscription.handle_batch is None:
            await subscription.handle(ctx, item.payload)
            return
        # The replay: a batch handler, one item at a time; what it emitted for the item joins the context's.
        call = self._item(item)
        await subscription.handle_batch(ctx, [call])
        if call.rejection is not None:
            raise call.rejection
        ctx.outgoing.extend(call.outgoing)

    def _item(self, decoded: Decoded, own_trace: bool = False) -> BatchItem:
        assert decoded.envelope is not None
        return BatchItem(decoded.payload, decoded.envelope, self.service.name, own_trace)

    def _context(self, conn: asyncpg.Connection, item: Decoded, state: BatchState | None) -> Context:
        r = item.record
        return Context(self.service.name, conn, item.envelope, r.topic, r.partition, r.offset, r.key, r.value,
                       tuple(r.headers or ()), state=self.service.batch_state() if state is None else state,
                       settings=self.settings)

