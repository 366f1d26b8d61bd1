"""Transactional outbox: rows written with the state change, relayed to Kafka afterwards."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed

from warden.contract.envelope import encode_structured, new_event
from warden.contract.events import Payload, type_of
from warden.contract.topics import topic_of
from warden.contract.trace_context import TraceContext
from warden.runtime import metrics, tracing
from warden.runtime.backoff import Backoff
from warden.runtime.database import after_transient, is_transient

log = logging.getLogger(__name__)


@dataclass(slots=True)  # never changed, but built for every event: a frozen dataclass's __init__ costs 3x
class OutboxRow:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    event_type: str = ""  # for metrics; empty for dead letters
    # The trace context the event carries (tracing.py), kept beside it so that the relay's publish
    # span joins the trace without decoding the value.
    trace: TraceContext | None = None


@dataclass(frozen=True)
class Verbatim:
    """An event whose data must travel exactly as received (someone else signed it): its type and data."""

    event_type: str
    data: dict[str, Any]


def event_row(service: str, event: Payload | Verbatim) -> OutboxRow:
    """The outbox row of one contract event: its type, topic and key follow from its model in the
    registry; refused (ValueError) when the topic's writers do not include `service`."""
    event_type = event.event_type if isinstance(event, Verbatim) else type_of(event)
    topic = topic_of(event_type)
    if service not in topic.writers:
        raise ValueError(f"{service} may not write {topic.name} (writers: {', '.join(topic.writers)})")
    payload = event.data if isinstance(event, Verbatim) else event.model_dump(mode="json", exclude_none=False)
    key = topic.key_of(payload)
    trace = tracing.current_trace()  # the handler's or request's: the event it is derived from
    value, headers = encode_structured(new_event(event_type, f"/warden/{service}", payload, trace=trace))
    return OutboxRow(topic.name, key.encode() if key is not None else None, value, headers, event_type, trace)


# One statement for a transaction's rows, however many: the rows as parallel arrays, each row's headers
# a slice [first:last] of two flat arrays (rows carry different numbers of headers; an empty slice is
# '{}'). Ids are assigned as the rows are inserted, in the order of the arrays.
_INSERT_ROWS = """
INSERT INTO outbox (topic, key, value, header_names, header_values, traceparent, tracestate)
SELECT u.topic, u.key, u.value, ($4::text[])[u.first:u.last], ($5::bytea[])[u.first:u.last], u.tp, u.ts
FROM unnest($1::text[], $2::bytea[], $3::bytea[], $6::int[], $7::int[], $8::text[], $9::text[])
     WITH ORDINALITY AS u (topic, key, value, first, last, tp, ts, n)
ORDER BY u.n
RETURNING id"""


async def write_rows(conn: asyncpg.Connection, rows: list[OutboxRow]) -> list[int]:
    """Insert the rows (one statement); their ids, in order."""
    if not rows:
        return []
    names: list[str] = []
    values: list[bytes] = []
    first: list[int] = []
    last: list[int] = []
    for r in rows:
        first.append(len(names) + 1)
        for name, value in r.headers:
            names.append(name)
            values.append(value)
        last.append(len(names))
    inserted = await conn.fetch(
        _INSERT_ROWS, [r.topic for r in rows], [r.key for r in rows], [r.value for r in rows], names, values,
        first, last, [r.trace.traceparent if r.trace else None for r in rows],
        [r.trace.tracestate if r.trace else None for r in rows])
    ids = [r["id"] for r in inserted]
    if len(ids) != len(rows) or any(a >= b for a, b in zip(ids, ids[1:])):
        raise RuntimeError("outbox insert returned its ids out of order")  # the relay's per-key order rests on it
    return ids


async def commit_without_waiting_for_disk(conn: asyncpg.Connection) -> None:
    """This transaction's commit returns before its WAL is on disk (`synchronous_commit` off, for it alone).

    Only for the relay's deletes of what the broker already has: lost in a database crash (the last
    fraction of a second of them), those rows are sent again, as after any failure between a send and
    its delete, and consumers drop the copies (their inbox, or their own keys). Every commit that must
    wait for the disk, each consumer batch's, then shares the disk's flushes with fewer others."""
    await conn.execute("SET LOCAL synchronous_commit TO off")


# The sent rows' delete as one statement in a transaction of its own, committed the same way: its
# uncorrelated sub-select runs once, before any row is read, and `set_config(…, true)` lasts until the
# statement's implicit transaction ends, after its commit. One round trip, where BEGIN, SET LOCAL, the
# DELETE and COMMIT take four.
_DELETE_SENT = """
DELETE FROM outbox
WHERE id = ANY($1::bigint[]) AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'"""


class OutboxRelay:
    """Publishes outbox rows; deletes them only after the broker acknowledged.

    Two ways in. A *scan* takes the oldest rows with `SELECT … FOR UPDATE SKIP LOCKED` in a
    transaction that deletes them once sent: at start, every SCAN_EVERY_S, whenever `wakeup` is set
    (API requests, jobs, other engines), and after any failure until the table is drained. And
    the consumer loop *hands over* the rows each batch has just committed (`hand_over`): those
    are sent as they are and deleted, with no scan. Per key, events still go out in the order
    they were committed: handed rows are sent in hand-over order, and after a failure nothing
    handed is sent until scans have sent, in id order, everything committed before. A handed
    row that a scan took is forgotten, so one process sends each row once; another replica's
    scan may send a row this one was handed (at least once, as ever: consumers drop the
    duplicate in their inbox).

    The relay's transactions only delete (or set aside) rows the broker has acknowledged, so they
    commit without waiting for the disk (`commit_without_waiting_for_disk`).
    """

    # Handed rows kept at most; past that they are forgotten and scans send them (the broker is slow).
    MAX_HANDED = 10_000
    # A scan at least this often, however busy: rows a dead replica or a previous life left behind. Not
    # more often: while rows are handed over, a scan walks the index over every row deleted since the
    # table's last vacuum, and finds little else.
    SCAN_EVERY_S = 5.0
    # The backlog is counted at most this often: count(*) reads every row version the table holds, the
    # deleted ones too until a vacuum, and the alerts on it wait minutes.
    BACKLOG_EVERY_S = 10.0
    # Rows live for milliseconds, so the table is mostly deleted rows until a vacuum, which autovacuum
    # starts a minute apart by default; every insert, scan and count walks them. The relay vacuums the
    # table itself once it has deleted this many rows, at most every VACUUM_EVERY_S, and only while it
    # keeps up (a pass that took less than a full batch): a vacuum reads every row still waiting.
    VACUUM_AFTER_DELETED = 2_000
    VACUUM_EVERY_S = 2.0

    def __init__(self, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, *,
                 batch_size: int, retry_initial_s: float, retry_max_s: float):
        self.service = service
        self.pool = pool
        self.producer = producer
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.wakeup = asyncio.Event()  # set: scan the table now
        self.healthy = True
        self._backlog_counted_at = float("-inf")
        self._deleted = 0  # rows deleted since the last vacuum
        self._vacuumed_at = float("-inf")
        self.handed: dict[int, OutboxRow] = {}  # committed by this process's consumer, not yet sent; in order
        self._handed_event = asyncio.Event()
        self._scanned: set[int] = set()  # what the last scan sent: a late hand-over of it is dropped
        self._scanning = True  # scans only, until one finds the table drained: at start, after a failure
        self._scan_epoch = 0  # bumped whenever scanning starts, so a scan begun before does not end it
        self._scan_started_at = float("-inf")  # loop time; SCAN_EVERY_S later the next pass is a scan again

    def hand_over(self, ids: list[int], rows: list[OutboxRow]) -> None:
        """Rows the consumer loop has just committed, in commit order."""
        for row_id, row in zip(ids, rows):
            if row_id not in self._scanned:
                self.handed[row_id] = row
        if len(self.handed) > self.MAX_HANDED:
            self.handed.clear()
            self._start_scanning()
        self._handed_event.set()

    def _start_scanning(self) -> None:
        self._scanning = True
        self._scan_epoch += 1

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            # Cleared before the pass, not after: a commit that signals while this pass runs (its
            # rows maybe not yet visible to our SELECT) must make the next wait return at once,
            # not leave its rows waiting for the next commit or the 1 s timeout.
            scan = (self._scanning or self.wakeup.is_set() or not self.handed
                    or asyncio.get_running_loop().time() - self._scan_started_at >= self.SCAN_EVERY_S)
            self.wakeup.clear()
            self._handed_event.clear()
            try:
                await self.gauge_backlog()
                sent = await (self.publish_batch() if scan else self.publish_handed())
                if sent < self.batch_size:  # not while draining a backlog: each vacuum would read all of it
                    await self.vacuum_when_due()
                self.healthy = True
                backoff.reset()
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, KafkaError)):
                    log.exception("outbox relay failed", extra={"error_type": type(exc).__name__})
                await after_transient(self.pool, exc)
                metrics.TRANSIENT_ERRORS.labels("outbox").inc()
                self.healthy = False
                self._start_scanning()  # what the pass took is still in the table: send it again, in order
                if stopping.is_set():
                    return  # what is left stays in the outbox for the next start
                log.warning("outbox relay retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s})
                await backoff.wait()
                continue
            if sent >= self.batch_size or (self.handed and not self._scanning):
                continue  # more is waiting
            if stopping.is_set() and not scan:
                continue  # the last pass before stopping is a scan: it takes whatever is left
            if stopping.is_set():
                return  # drained
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until a hand-over, a `wakeup`, or a second has passed (then a scan looks for leftovers)."""
        waits = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(self._handed_event.wait())]
        try:
            await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def publish_batch(self) -> int:
        """A scan: the oldest unlocked rows, sent, then deleted in the same transaction."""
        epoch = self._scan_epoch
        self._scan_started_at = asyncio.get_running_loop().time()
        # Two statements, not one `DELETE ... WHERE id IN (SELECT ... SKIP LOCKED) RETURNING`: that
        # one slows down with every dead row the outbox holds.
        async with self.pool.acquire() as conn, conn.transaction():
            await commit_without_waiting_for_disk(conn)
            rows = await conn.fetch(
                "SELECT id, topic, key, value, header_names, header_values, traceparent, tracestate FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", self.batch_size)
            if rows:
                refused = await self._send([(r["id"], OutboxRow(
                    r["topic"], r["key"], r["value"], list(zip(r["header_names"], r["header_values"])),
                    trace=TraceContext.parse(r["traceparent"], r["tracestate"]))) for r in rows])
                await set_aside(conn, refused)
                ids = [r["id"] for r in rows]
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
                self._deleted += len(ids)
                for row_id in ids:
                    self.handed.pop(row_id, None)
                self._scanned = set(ids)
        if len(rows) < self.batch_size and epoch == self._scan_epoch:
            self._scanning = False  # everything committed before this scan began is out
        return len(rows)

    async def publish_handed(self) -> int:
        """Handed rows, sent in order, then deleted: no scan."""
        batch = list(self.handed.items())[:self.batch_size]
        refused = await self._send(batch)
        ids = [row_id for row_id, _ in batch]
        for row_id in ids:
            self.handed.pop(row_id, None)
        async with self.pool.acquire() as conn:
            if refused:  # set aside and deleted together
                async with conn.transaction():
                    await commit_without_waiting_for_disk(conn)
                    await set_aside(conn, refused)
                    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
            else:
                await conn.execute(_DELETE_SENT, ids)
        self._deleted += len(ids)
        return len(batch)

    async def _send(self, rows: list[tuple[int, OutboxRow]]) -> list[tuple[int, str]]:
        """Every row acknowledged by the broker, or refused for good: those are returned, (id, error),
        to be set aside. Any other failure raises, and the pass is retried."""
        pending, refused = [], []
        traced = tracing.enabled()
        spans = {}  # row id -> its publish span, while tracing is on: from send to the broker's answer
        for row_id, r in rows:
            if traced and r.trace is not None:
                spans[row_id] = tracing.start_span(f"publish {r.topic}", r.trace, kind="PRODUCER", attributes={
                    "messaging.system": "kafka", "messaging.operation.type": "send",
                    "messaging.destination.name": r.topic, "warden.service": self.service})
            try:
                pending.append((row_id, r, await self.producer.send(r.topic, r.value, key=r.key,
                                                                    headers=list(r.headers))))
            except Exception as exc:  # checked before anything is sent: the record cannot go as it is
                tracing.end_span(spans.pop(row_id, None), exc)
                if not refused_for_good(exc):
                    for span in spans.values():
                        tracing.end_span(span, exc)
                    raise
                refused.append((row_id, r, exc))
        outcomes = await asyncio.gather(*(future for _, _, future in pending), return_exceptions=True)
        for (row_id, _, _), outcome in zip(pending, outcomes):
            tracing.end_span(spans.pop(row_id, None), outcome if isinstance(outcome, BaseException) else None)
        published = Tally()
        for (row_id, r, _), outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException):
                if not refused_for_good(outcome):
                    raise outcome
                refused.append((row_id, r, outcome))
            else:
                published[r.topic] += 1
        for topic, n in published.items():  # labels() once per topic: it costs a microsecond
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(n)
        for _, r, exc in refused:
            metrics.OUTBOX_REFUSED.labels(r.topic).inc()
            log.error("outbox row refused by the broker for good, set aside", extra={
                "topic": r.topic, "error_type": type(exc).__name__, "bytes": len(r.value)})
        return [(row_id, f"{type(exc).__name__}: {exc}"[:500]) for row_id, _, exc in refused]

    async def gauge_backlog(self) -> None:
        """Every row waiting in the outbox, whatever holds it there, and every row set aside."""
        now = asyncio.get_running_loop().time()
        if now - self._backlog_counted_at < self.BACKLOG_EVERY_S:
            return
        self._backlog_counted_at = now
        async with self.pool.acquire() as conn:
            waiting, aside = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_refused)")
        metrics.OUTBOX_BACKLOG.set(waiting)
        metrics.OUTBOX_SET_ASIDE.set(aside)


    async def vacuum_when_due(self) -> None:
        """VACUUM the outbox once enough rows were deleted (SKIP_LOCKED: another replica's vacuum or an
        autovacuum already at it is enough). Outside any transaction, as VACUUM must be."""
        now = asyncio.get_running_loop().time()
        if self._deleted < self.VACUUM_AFTER_DELETED or now - self._vacuumed_at < self.VACUUM_EVERY_S:
            return
        self._deleted, self._vacuumed_at = 0, now
        async with self.pool.acquire() as conn:
            await conn.execute("VACUUM (SKIP_LOCKED) outbox")


def refused_for_good(exc: BaseException) -> bool:
    """The broker (or the producer's own checks) will never take this record as it is: too large,
    invalid, not allowed. Timeouts and closed producers pass; retriable errors are retried."""
    return (isinstance(exc, KafkaError) and not exc.retriable
            and not isinstance(exc, (KafkaTimeoutError, ProducerClosed)))


async def set_aside(conn: asyncpg.Connection, refused: list[tuple[int, str]]) -> None:
    """Move refused rows to `outbox_refused` with their error, in the caller's transaction."""
    if not refused:
        return
    await conn.execute(
        """INSERT INTO outbox_refused (id, topic, key, value, header_names, header_values, created_at, error,
                                      traceparent, tracestate)
           SELECT o.id, o.topic, o.key, o.value, o.header_names, o.header_values, o.created_at, r.error,
                  o.traceparent, o.tracestate
           FROM outbox o JOIN unnest($1::bigint[], $2::text[]) AS r (id, error) ON r.id = o.id
           ON CONFLICT (id) DO NOTHING""",
        [row_id for row_id, _ in refused], [error for _, error in refused])
