"""The consumer loop: batch, inbox, handler, DLQ, outbox, commit, in that order.

One Postgres transaction per polled batch holds, for every event, its inbox row,
the handler's state changes and its outgoing events. Handlers first run back to
back in that transaction (the optimistic pass: no savepoints, and their
inserts-if-new go out together after them, see inserts.py); if any handler or
one of those inserts fails, the transaction is rolled back and the batch is
replayed in a new one with a savepoint per event, so only the failing event is
dead-lettered. A subscription with a batch handler (`Subscription.handle_batch`)
gets its topic's valid new events of the batch in one call in the optimistic pass,
and one call per event in the replay. Offsets are committed only after that
transaction commits, so a crash at any instant leads to redelivery, and the inbox
turns redelivery into a no-op.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from warden.contract.envelope import Envelope, EventRejected, decode
from warden.contract.events import model_for
from warden.contract.topics import TOPICS
from warden.runtime import metrics
from warden.runtime.backoff import Backoff
from warden.runtime.database import is_transient
from warden.runtime.inserts import DeferredInserts
from warden.runtime.outbox import OutboxRow, write_rows
from warden.runtime.service import Context, Service
from warden.runtime.settings import Settings

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

    @property
    def inbox_key(self) -> tuple[str, str]:
        if self.envelope is not None:
            return self.envelope.source, self.envelope.id
        r = self.record
        return f"kafka:{r.topic}/{r.partition}", str(r.offset)


def decode_record(record: ConsumerRecord) -> Decoded:
    topic = TOPICS[record.topic]
    decoded = Decoded(record)
    try:
        envelope = decode(record.value, record.headers, allow_binary=topic.inbound)
        decoded.envelope = envelope
        if envelope.type not in topic.event_types:
            raise EventRejected("unknown_type", f"{record.topic} does not carry events of this type")
        try:
            decoded.payload = model_for(envelope.type).model_validate(envelope.data)
        except ValidationError as exc:
            raise EventRejected("invalid_data", describe_validation_error(exc)) from None
    except EventRejected as rejection:
        decoded.rejection = rejection
    return decoded


async def claim_in_inbox(conn: asyncpg.Connection, items: list[Decoded]) -> set[tuple[str, str]]:
    """Record a batch's events in the inbox before handling them, in the batch's transaction.

    Returns the keys this transaction claimed; the others were handled before. A
    consumer handling the same events at the same time (a rebalance) holds their rows:
    this insert waits for its transaction, then claims nothing it committed, so an
    event's effects commit once. Rolled back with the batch, the claim goes too.
    """
    rows = await conn.fetch(
        "INSERT INTO inbox (source, event_id, topic) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
        " ON CONFLICT DO NOTHING RETURNING source, event_id",
        [i.inbox_key[0] for i in items], [i.inbox_key[1] for i in items], [i.record.topic for i in items])
    return {(r["source"], r["event_id"]) for r in rows}


async def claim_fresh(conn: asyncpg.Connection, items: list[Decoded]) -> list[Decoded]:
    """The batch's items this transaction claimed (claim_in_inbox), in order; of an event
    repeated inside the batch, the first copy only. The others are duplicates."""
    claimed = await claim_in_inbox(conn, items)
    fresh = []
    for item in items:
        if item.inbox_key in claimed:
            claimed.discard(item.inbox_key)
            fresh.append(item)
    return fresh


# A dead letter must fit the producer's limit whatever arrived (warden/runtime/kafka.py allows 2 MiB):
# past these sizes it carries a prefix, says so, and the original is kept in `dead_letters`.
DLQ_VALUE_LIMIT = 256 * 1024
DLQ_KEY_LIMIT = 1024
DLQ_HEADERS_LIMIT = 16 * 1024


def dlq_too_large(record: ConsumerRecord) -> bool:
    return (len(record.value or b"") > DLQ_VALUE_LIMIT or len(record.key or b"") > DLQ_KEY_LIMIT
            or sum(len(k) + len(v or b"") for k, v in record.headers or ()) > DLQ_HEADERS_LIMIT)


def dlq_row(service: str, record: ConsumerRecord, rejection: EventRejected) -> OutboxRow:
    """The original bytes, unchanged, with the reason in `dlq.*` headers (DESIGN.md); a record too large
    to publish again goes as a bounded prefix with `dlq.truncated` (the original: keep_dead_letter)."""
    value, key = record.value or b"", record.key
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")]
    truncated = []
    if len(value) > DLQ_VALUE_LIMIT:
        value, truncated = value[:DLQ_VALUE_LIMIT], truncated + ["value"]
    if key is not None and len(key) > DLQ_KEY_LIMIT:
        key, truncated = key[:DLQ_KEY_LIMIT], truncated + ["key"]
    if sum(len(k) + len(v or b"") for k, v in headers) > DLQ_HEADERS_LIMIT:
        headers, truncated = [], truncated + ["headers"]
    if truncated:
        headers.append(("dlq.truncated", ",".join(truncated).encode()))
        headers.append(("dlq.original_bytes", str(len(record.value or b"")).encode()))
    headers += [
        ("dlq.reason", rejection.reason.encode()),
        ("dlq.error", rejection.error.encode()[:1000]),
        ("dlq.service", service.encode()),
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
    ]
    return OutboxRow(TOPICS[record.topic].dlq, key, value, headers)


async def keep_dead_letter(conn: asyncpg.Connection, record: ConsumerRecord, reason: str) -> None:
    """The whole original of a dead letter published truncated, for replay (in the batch's transaction)."""
    headers = list(record.headers or ())
    await conn.execute(
        """INSERT INTO dead_letters (topic, partition, "offset", key, value, header_names, header_values, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        record.topic, record.partition, record.offset, record.key, record.value or b"",
        [k for k, _ in headers], [v or b"" for _, v in headers], reason)


class _Replay(Exception):
    """A handler failed in the optimistic pass: roll the batch's transaction back and replay it event by event."""


class _GroupMembership(ConsumerRebalanceListener):
    def __init__(self, loop: ConsumerLoop) -> None:
        self.loop = loop
        self.joined = False

    async def on_partitions_revoked(self, revoked):  # noqa: D401 - aiokafka callback
        # What we handled is committed before another member takes the partitions over.
        await self.loop.commit_handled()

    async def on_partitions_assigned(self, assigned):
        self.joined = True


class ConsumerLoop:
    def __init__(self, service: Service, pool: asyncpg.Pool, consumer: AIOKafkaConsumer, *,
                 batch_max_records: int, poll_timeout_ms: int, retry_initial_s: float, retry_max_s: float,
                 commit_interval_s: float = 0.0,
                 on_committed: Callable[[list[int], list[OutboxRow]], None] | None = None,
                 settings: Settings | None = None):
        self.service = service
        self.settings = settings if settings is not None else Settings()
        self.pool = pool
        self.consumer = consumer
        self.batch_max_records = batch_max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.commit_interval_s = commit_interval_s
        self.on_committed = on_committed
        self.membership = _GroupMembership(self)
        self.database_ok = True
        self._handled: dict[TopicPartition, int] = {}  # the next offset of each partition, not yet committed
        self._commit_started_at = float("-inf")
        self._commit_in_flight: asyncio.Task | None = None

    def subscribe(self) -> None:
        self.consumer.subscribe([s.topic for s in self.service.subscriptions], listener=self.membership)

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                try:
                    batch = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms,
                                                        max_records=self.batch_max_records)
                except KafkaError as exc:
                    metrics.TRANSIENT_ERRORS.labels(self.service.name, "kafka").inc()
                    log.warning("poll failed, retrying", extra={"error_type": type(exc).__name__})
                    await asyncio.sleep(self.retry_initial_s)
                    continue
                if not batch:
                    await self.commit_behind()  # a quiet spell: what was handled before it
                    continue
                records = [r for partition_records in batch.values() for r in partition_records]
                if not await self.process_until_done(records, stopping):
                    return  # stopping while the database is down: uncommitted, redelivered later
                self.note_handled(batch)
                await self.commit_behind()
        finally:
            await self.commit_handled()

    def note_handled(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """The batch's transaction has committed: its offsets may be committed."""
        for tp, records in batch.items():
            self._handled[tp] = records[-1].offset + 1
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(self.service.name, tp.topic, str(tp.partition)).set(
                    max(highwater - records[-1].offset - 1, 0))

    async def commit_behind(self) -> None:
        """Commit the handled offsets while the next batch is fetched and processed, at most once per
        commit interval.

        Their transactions have committed, so the offsets only decide what a restart
        redelivers, and the inbox drops a redelivery: the commit's round trip need not
        hold the next batch back, nor follow every batch (each costs the broker a request).
        One commit is in flight at a time, so they land in order."""
        if time.monotonic() - self._commit_started_at >= self.commit_interval_s:
            await self._start_commit()

    async def commit_handled(self) -> None:
        """Commit every handled offset now and wait for it (stopping, or partitions revoked)."""
        await self._start_commit()
        if self._commit_in_flight is not None:
            await self._commit_in_flight

    async def _start_commit(self) -> None:
        # The loop and the rebalance listener both commit: wait until none is in flight, whoever started it.
        while self._commit_in_flight is not None and not self._commit_in_flight.done():
            await self._commit_in_flight
        if not self._handled:
            return
        offsets, self._handled = self._handled, {}
        self._commit_started_at = time.monotonic()
        self._commit_in_flight = asyncio.create_task(self.commit(offsets), name="offset-commit")

    async def process_until_done(self, records: list[ConsumerRecord], stopping: asyncio.Event) -> bool:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                await self.process(records)
                self.database_ok = True
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.database_ok = False
                metrics.TRANSIENT_ERRORS.labels(self.service.name, "database").inc()
                log.warning("batch failed on a transient error, retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s,
                                   "events": len(records)})
                if stopping.is_set():
                    return False
                await backoff.wait()

    async def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        items = [decode_record(r) for r in records]
        try:
            outcomes, outgoing, ids, hooks = await self._process(items, isolated=False)
        except _Replay:  # that transaction is rolled back: again, in a new one, a savepoint per event
            outcomes, outgoing, ids, hooks = await self._process(items, isolated=True)
        if self.on_committed is not None and outgoing:
            self.on_committed(ids, outgoing)  # the outbox rows are committed: the relay may send them
        for hook in hooks:  # Context.on_commit
            hook()
        # Metrics only after commit: a rolled-back batch will be counted when it is retried.
        per_event = (time.perf_counter() - started) / max(len(records), 1)
        for topic, outcome in outcomes:
            metrics.EVENTS_CONSUMED.labels(self.service.name, topic, outcome).inc()
            metrics.PROCESSING_SECONDS.labels(self.service.name, topic).observe(per_event)
        metrics.count_outgoing(self.service.name, outgoing)

    async def _process(self, items: list[Decoded], *, isolated: bool
                       ) -> tuple[list[tuple[str, str]], list[OutboxRow], list[int], list[Callable[[], None]]]:
        """One transaction: inbox claim, handlers, outbox rows, commit.

        (outcomes, outbox rows, their ids, the handlers' on-commit hooks)"""
        outcomes: list[tuple[str, str]] = []
        outgoing: list[OutboxRow] = []
        hooks: list[Callable[[], None]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await claim_fresh(conn, items)
            claimed = {id(item) for item in fresh}
            outcomes += [(item.record.topic, "duplicate") for item in items if id(item) not in claimed]
            # The optimistic pass's Context.cache and deferred inserts: they live as long as its transaction.
            cache, deferred = (None, None) if isolated else ({}, DeferredInserts())
            if not isolated:
                await self._prefetch(conn, fresh, cache)
            # Optimistic pass: each batch handler's events, handed over together where its topic first appears.
            batches = {} if isolated else self._batches(fresh)
            handled: dict[int, str] = {}
            for item in fresh:
                if id(item) in handled:
                    continue
                group = batches.pop(item.record.topic, None) if item.rejection is None else None
                if group:
                    await self._handle_batch(conn, group, outgoing, hooks, cache, deferred)
                    handled.update((id(i), "processed") for i in group)
                else:
                    handled[id(item)] = await self._handle(conn, item, outgoing, hooks, isolated=isolated,
                                                           cache=cache, deferred=deferred)
            outcomes += [(item.record.topic, handled[id(item)]) for item in fresh]
            if deferred:
                await self._flush(conn, deferred)
            ids = await write_rows(conn, outgoing)
        return outcomes, outgoing, ids, hooks

    def _batches(self, fresh: list[Decoded]) -> dict[str, list[Decoded]]:
        """The valid events of each topic whose subscription has a batch handler, in offset order."""
        batches: dict[str, list[Decoded]] = {}
        for item in fresh:
            if item.rejection is None and self.service.subscription(item.record.topic).handle_batch is not None:
                batches.setdefault(item.record.topic, []).append(item)
        return batches

    async def _handle_batch(self, conn: asyncpg.Connection, group: list[Decoded], outgoing: list[OutboxRow],
                            hooks: list[Callable[[], None]], cache: dict | None,
                            deferred: DeferredInserts | None) -> None:
        """A batch handler's call in the optimistic pass; any failure -> _Replay (each event alone)."""
        subscription = self.service.subscription(group[0].record.topic)
        ctx = self._context(conn, group[0], cache, deferred)
        try:
            await subscription.handle_batch(ctx, [item.payload for item in group])
        except Exception as exc:
            if is_transient(exc):
                raise
            log.info("batch handler failed, batch replayed event by event", extra={
                "topic": group[0].record.topic, "events": len(group), "error_type": type(exc).__name__})
            raise _Replay() from None
        outgoing.extend(ctx.outgoing)
        hooks.extend(ctx.committed)

    async def _prefetch(self, conn: asyncpg.Connection, fresh: list[Decoded], cache: dict) -> None:
        """Each subscription's set-based read for the batch (Subscription.prefetch), into the shared cache."""
        by_topic: dict[str, list[Decoded]] = {}
        for item in fresh:
            if item.rejection is None:
                by_topic.setdefault(item.record.topic, []).append(item)
        for topic, items in by_topic.items():
            prefetch = self.service.subscription(topic).prefetch
            if prefetch is None:
                continue
            try:
                await prefetch(self._context(conn, items[0], cache), [i.payload for i in items])
            except Exception as exc:
                if is_transient(exc):
                    raise
                # Correct either way (handlers read for themselves in the replay), but slower: say so.
                log.warning("prefetch failed, batch replayed event by event", extra={
                    "topic": topic, "error_type": type(exc).__name__, "where": _where(exc)})
                raise _Replay() from None

    async def _flush(self, conn: asyncpg.Connection, deferred: DeferredInserts) -> None:
        pending = len(deferred)
        try:
            await deferred.flush(conn)
        except Exception as exc:
            if is_transient(exc):
                raise
            # Correct either way (each insert runs at once in the replay), but slower: say so.
            log.info("deferred inserts failed, batch replayed event by event",
                     extra={"inserts": pending, "error_type": type(exc).__name__})
            raise _Replay() from None

    async def _handle(self, conn: asyncpg.Connection, item: Decoded, outgoing: list[OutboxRow],
                      hooks: list[Callable[[], None]], *, isolated: bool = True, cache: dict | None = None,
                      deferred: DeferredInserts | None = None) -> str:
        """Run one event's handler; `isolated=False` (optimistic pass): no savepoint, any failure -> _Replay.

        `cache`: the optimistic pass's Context.cache, shared by the batch; isolated (None), each handler
        and rejection hook call gets its own, so nothing learnt in a rolled-back savepoint is reused."""
        record = item.record
        subscription = self.service.subscription(record.topic)
        rejection = item.rejection
        if rejection is None:
            ctx = self._context(conn, item, cache, deferred)
            try:
                if isolated:
                    async with conn.transaction():
                        await self._call_handler(subscription, ctx, item.payload)
                else:
                    await self._call_handler(subscription, ctx, item.payload)
                outgoing.extend(ctx.outgoing)
                hooks.extend(ctx.committed)
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
                    "error_type": type(exc).__name__, "where": _where(exc)})
                rejection = EventRejected("handler_error", f"{type(exc).__name__} in {_where(exc)}")
        log.info("event dead-lettered", extra={
            "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "reason": rejection.reason, "error": rejection.error})
        if subscription.on_rejected is not None:
            ctx = self._context(conn, item, cache, deferred)
            try:
                if isolated:
                    async with conn.transaction():
                        await subscription.on_rejected(ctx, rejection)
                else:
                    await subscription.on_rejected(ctx, rejection)
                outgoing.extend(ctx.outgoing)
                hooks.extend(ctx.committed)
            except Exception as exc:
                if is_transient(exc):
                    raise
                if not isolated:
                    raise _Replay() from None
                log.error("rejection hook failed", extra={"error_type": type(exc).__name__, "where": _where(exc)})
        outgoing.append(dlq_row(self.service.name, record, rejection))
        if dlq_too_large(record):
            await keep_dead_letter(conn, record, rejection.reason)
        return "dead_lettered"

    @staticmethod
    async def _call_handler(subscription, ctx: Context, payload: object) -> None:
        if subscription.handle_batch is not None:  # the replay: a batch handler, one event at a time
            await subscription.handle_batch(ctx, [payload])
        else:
            await subscription.handle(ctx, payload)

    def _context(self, conn: asyncpg.Connection, item: Decoded, cache: dict | None,
                 deferred: DeferredInserts | None = None) -> Context:
        r = item.record
        return Context(self.service.name, conn, item.envelope, r.topic, r.partition, r.offset, r.key, r.value,
                       tuple(r.headers or ()), cache={} if cache is None else cache, deferred=deferred,
                       settings=self.settings)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # Safe to go on: the next commit covers these offsets, and redelivery is deduplicated.
            metrics.TRANSIENT_ERRORS.labels(self.service.name, "kafka").inc()
            log.warning("offset commit failed", extra={"error_type": type(exc).__name__})


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} ({code.co_name})"
