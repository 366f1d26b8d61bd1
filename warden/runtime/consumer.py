"""The consumer loop: poll a batch, have it processed, commit its offsets.

The batch kernel (batch.py) handles the records in one transaction; only after that
transaction commits are the Kafka offsets committed (at most every commit interval, and
before partitions are revoked), so a crash at any instant leads to redelivery, and the
inbox turns redelivery into a no-op.

While a batch's transaction waits for the database, the loop reads ahead: it takes the
next batch if the consumer already holds one (never waiting for the broker) and decodes
it, a slice at a time, so that decoding overlaps the database's work instead of following
it.

A service may declare more than one batch in flight (`Service.batches_in_flight`): the next
batch's transaction then starts while the previous ones still wait for the database, each on
its own connection, so that the worker's Python and Postgres's work overlap. Their effects
may then commit in another order than their offsets; whatever must happen in order has to be
ordered by the handlers' own locks (moderation locks the items it scores). Offsets are still
noted in the batches' order: a batch's offsets become committable only once every batch
before it has committed too. Such a service's batches are each one partition's records, the
partitions taken in turn (`ConsumerLoop.poll`), so that batches in flight seldom hold the same
key and seldom wait for each other's locks.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from warden.runtime import metrics
from warden.runtime.backoff import Backoff
from warden.runtime.batch import BatchProcessor, Decoded
from warden.runtime.database import is_transient
from warden.runtime.service import Service
from warden.runtime.settings import Settings
from warden.runtime.unit_of_work import HandOver

log = logging.getLogger(__name__)


class _GroupMembership(ConsumerRebalanceListener):
    def __init__(self, loop: ConsumerLoop) -> None:
        self.loop = loop
        self.joined = False

    async def on_partitions_revoked(self, revoked):  # noqa: D401 - aiokafka callback
        # What we handled is committed before another member takes the partitions over.
        await self.loop.commit_handled()
        self.loop.spacing.forget(revoked)

    async def on_partitions_assigned(self, assigned):
        self.joined = True


class Spacing:
    """Partitions of the subscriptions that read at most every so often (Subscription.read_every_s): each
    paused once a poll has brought its records up to the partition's end, and resumed when its interval
    has passed. A partition behind its end is not paused: a view catching up (after a restart, an outage,
    a burst) reads at full speed, and only a view that is current waits between reads.

    Pausing drops records the consumer fetched past the batch for that partition; they are fetched
    again after the pause (its position is where the batch ended)."""

    def __init__(self, consumer: AIOKafkaConsumer, intervals: dict[str, float]):
        self.consumer = consumer
        self.intervals = intervals  # topic -> seconds, only the spaced ones
        self.paused: dict[TopicPartition, asyncio.TimerHandle] = {}

    def after_poll(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        if not self.intervals:
            return
        assigned = self.consumer.assignment()
        for tp, records in batch.items():
            interval = self.intervals.get(tp.topic)
            if not interval or tp in self.paused or tp not in assigned:
                continue
            end = self.consumer.highwater(tp)  # as of the last fetch; None before any
            if end is not None and records and records[-1].offset + 1 >= end:
                self.consumer.pause(tp)
                self.paused[tp] = asyncio.get_running_loop().call_later(interval, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        del self.paused[tp]
        if tp in self.consumer.assignment():
            self.consumer.resume(tp)

    def forget(self, partitions) -> None:
        """Partitions revoked, or the loop ending: their timers go (a partition assigned again starts unpaused)."""
        for tp in list(partitions):
            timer = self.paused.pop(tp, None)
            if timer is not None:
                timer.cancel()


@dataclass
class _Ahead:
    """A batch read ahead, and its records decoded."""
    batch: dict[TopicPartition, list[ConsumerRecord]]
    decoded: list[Decoded]


class ConsumerLoop:
    # Records decoded between two looks at the batch in flight: ~0.2 ms of a report's decoding,
    # the most a database answer waits before the transaction goes on.
    DECODE_SLICE = 25

    def __init__(self, service: Service, pool: asyncpg.Pool, consumer: AIOKafkaConsumer, *,
                 batch_max_records: int, poll_timeout_ms: int, retry_initial_s: float, retry_max_s: float,
                 commit_interval_s: float = 0.0,
                 batches_in_flight: int = 1,
                 on_committed: HandOver | None = None,
                 settings: Settings | None = None):
        self.service = service
        self.processor = BatchProcessor(service, pool, hand_over=on_committed, settings=settings)
        self.pool = pool
        self.consumer = consumer
        self.batch_max_records = batch_max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.commit_interval_s = commit_interval_s
        self.batches_in_flight = max(batches_in_flight, 1)
        self.on_committed = on_committed
        self.membership = _GroupMembership(self)
        self.database_ok = True
        self._handled: dict[TopicPartition, int] = {}  # the next offset of each partition, not yet committed
        self._commit_started_at = float("-inf")
        self._commit_in_flight: asyncio.Task | None = None
        self.spacing = Spacing(consumer, {s.topic: s.read_every_s for s in service.subscriptions if s.read_every_s})
        self.turns: deque[TopicPartition] = deque()  # poll(): the assigned partitions, next one first

    def subscribe(self) -> None:
        self.consumer.subscribe([s.topic for s in self.service.subscriptions], listener=self.membership)

    async def run(self, stopping: asyncio.Event) -> None:
        ahead: _Ahead | None = None
        in_flight: deque[asyncio.Task] = deque()  # the batches being handled, oldest first
        try:
            while not stopping.is_set():
                if ahead is not None:
                    batch, decoded, ahead = ahead.batch, ahead.decoded, None
                else:
                    try:
                        batch = await self.poll(self.poll_timeout_ms)
                    except KafkaError as exc:
                        metrics.TRANSIENT_ERRORS.labels("kafka").inc()
                        log.warning("poll failed, retrying", extra={"error_type": type(exc).__name__})
                        await asyncio.sleep(self.retry_initial_s)
                        continue
                    if not await self._settle(in_flight, wait=False):
                        return
                    if not batch:
                        await self.commit_behind()  # a quiet spell: what was handled before it
                        continue
                    decoded = None
                after = in_flight[-1] if in_flight else None
                in_flight.append(asyncio.create_task(self._handle(batch, decoded, stopping, after), name="batch"))
                if len(in_flight) < self.batches_in_flight:
                    continue
                ahead = await self.read_ahead(in_flight[0])
                if not await self._settle(in_flight, wait=True):
                    return  # stopping while the database is down: uncommitted, redelivered later
                await self.commit_behind()
            await self._settle(in_flight, wait=True, every=True)
        finally:
            for handling in in_flight:  # the loop itself was cancelled, or a batch failed
                if not handling.done():
                    handling.cancel()
            self.spacing.forget(self.spacing.paused)
            await self.commit_handled()

    @staticmethod
    async def _settle(in_flight: deque[asyncio.Task], *, wait: bool, every: bool = False) -> bool:
        """Take the finished batches off the front of `in_flight`: the oldest one, waited for when `wait`
        (all of them when `every`), and any finished behind it. False if one stopped unfinished."""
        while in_flight and (wait or in_flight[0].done()):
            if not await in_flight.popleft():
                return False
            wait = every
        return True

    async def _handle(self, batch: dict[TopicPartition, list[ConsumerRecord]], decoded: list[Decoded] | None,
                      stopping: asyncio.Event, after: asyncio.Task | None = None) -> bool:
        """Process the batch; once its transaction has committed, and the batch before it (`after`) is
        through, its offsets may be committed (even while reading ahead waits for a rebalance to finish:
        the revoked partitions' commit must include them)."""
        records = [r for partition_records in batch.values() for r in partition_records]
        if not await self.process_until_done(records, stopping, decoded=decoded):
            return False
        if after is not None and not await after:
            return False
        self.note_handled(batch)
        return True

    async def poll(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        """The next batch. With more than one batch in flight, one partition's records the consumer already
        holds, the partitions taken in turn: batches in flight then come from different partitions, and a key
        the producer's partitioner placed is in one partition, so two batches in flight rarely hold the same
        key or wait for each other's locks. Otherwise (or when it holds nothing) a poll of every partition."""
        if self.batches_in_flight > 1:
            assigned = self.consumer.assignment()
            if set(self.turns) != assigned:
                self.turns = deque(sorted(assigned))
            for _ in range(len(self.turns)):
                tp = self.turns[0]
                self.turns.rotate(-1)
                try:
                    batch = await self.consumer.getmany(tp, timeout_ms=0, max_records=self.batch_max_records)
                except IllegalStateError:  # revoked since the turns were drawn up: drawn up again next time
                    self.turns.clear()
                    break
                if batch:
                    self.spacing.after_poll(batch)
                    return batch
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_max_records)
        self.spacing.after_poll(batch)
        return batch

    async def read_ahead(self, handling: asyncio.Task) -> _Ahead | None:
        """While `handling` waits for the database: the next batch, if the consumer holds one already,
        decoded a slice at a time (between slices the batch in flight goes on as soon as it can)."""
        try:
            batch = await self.poll(0)
        except KafkaError:
            return None  # the next poll meets the error and retries
        if not batch:
            return None
        records = [r for partition_records in batch.values() for r in partition_records]
        decoded: list[Decoded] = []
        for start in range(0, len(records), self.DECODE_SLICE):
            if not handling.done():
                await asyncio.sleep(0)
            decoded += self.processor.decode(records[start:start + self.DECODE_SLICE])
        return _Ahead(batch, decoded)

    def note_handled(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """The batch's transaction has committed: its offsets may be committed."""
        for tp, records in batch.items():
            self._handled[tp] = records[-1].offset + 1
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
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

    async def process_until_done(self, records: list[ConsumerRecord], stopping: asyncio.Event, *,
                                 decoded: list[Decoded] | None = None) -> bool:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                await self.process(records, decoded=decoded)
                self.database_ok = True
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.database_ok = False
                metrics.TRANSIENT_ERRORS.labels("database").inc()
                log.warning("batch failed on a transient error, retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s,
                                   "events": len(records)})
                if stopping.is_set():
                    return False
                await backoff.wait()

    async def process(self, records: list[ConsumerRecord], *, decoded: list[Decoded] | None = None) -> None:
        await self.processor.process(records, decoded=decoded)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # Safe to go on: the next commit covers these offsets, and redelivery is deduplicated.
            metrics.TRANSIENT_ERRORS.labels("kafka").inc()
            log.warning("offset commit failed", extra={"error_type": type(exc).__name__})


class CatchUpIncomplete(ConnectionError):
    """The catch-up topics could not be read to their end (stopping, or the broker failing): transient, so the
    batch that asked for it is retried, never dead-lettered on a registry half read."""


class CatchUp:
    """Reads the `catch_up_first` topics (the authority registry) to their current end with a reader of its own
    (no consumer group), every batch processed. First at start, from the beginning, before the consumer group
    consumes anything: what the other topics' events are checked against is known, even to a new group. Then
    whenever a batch meets an event rejected as UnknownYet (batch.py), from where the reader left off: a
    registry record written before the event is known, even when the group's partitions brought the event
    first. The inbox drops these records when the group reads them again."""

    def __init__(self, loop: ConsumerLoop, reader: AIOKafkaConsumer, topics: list[str], stopping: asyncio.Event):
        self.loop = loop
        self.reader = reader
        self.topics = topics
        self.stopping = stopping
        self.partitions: set[TopicPartition] = set()
        self._lock = asyncio.Lock()  # one reader: one pass at a time

    async def __call__(self) -> int:
        """How many records were read; CatchUpIncomplete when stopping or the broker cut the pass short."""
        async with self._lock:
            try:
                return await self._read_to_the_end()
            except KafkaError as exc:
                raise CatchUpIncomplete(f"catch-up read failed: {type(exc).__name__}") from None

    async def _read_to_the_end(self) -> int:
        partitions = await self._assign()
        if not partitions:
            return 0
        self.reader.resume(*partitions)
        try:
            return await self._read(partitions)
        finally:
            self.reader.pause(*partitions)  # between passes the reader fetches nothing: no load on the broker

    async def _read(self, partitions: list[TopicPartition]) -> int:
        ends = await self.reader.end_offsets(partitions)
        read = 0
        while True:
            behind = [tp for tp in partitions if await self.reader.position(tp) < ends[tp]]
            if not behind:
                return read
            if self.stopping.is_set():
                raise CatchUpIncomplete("stopping")
            batch = await self.reader.getmany(*behind, timeout_ms=self.loop.poll_timeout_ms,
                                              max_records=self.loop.batch_max_records)
            records = [r for tp in behind for r in batch.get(tp, ())]  # those past the end too: the reader is past them
            if records:
                decoded = self.loop.processor.decode(records)
                for item in decoded:
                    item.caught_up = True  # a record of these topics never waits for them
                if not await self.loop.process_until_done(records, self.stopping, decoded=decoded):
                    raise CatchUpIncomplete("stopping")
            read += len(records)

    async def _assign(self) -> list[TopicPartition]:
        """The topics' partitions, as the reader's metadata knows them; one new since the last pass (or at the
        first) is read from its beginning, the others from where the reader left off."""
        if not self.partitions:
            await self.reader.topics()  # metadata, so that partitions are known
        partitions = {TopicPartition(t, p) for t in self.topics for p in self.reader.partitions_for_topic(t) or ()}
        if partitions != self.partitions:
            positions = {tp: await self.reader.position(tp) for tp in self.partitions}
            self.reader.assign(list(partitions))
            for tp in partitions:
                if tp in positions:
                    self.reader.seek(tp, positions[tp])
            new = partitions - self.partitions
            if new:
                await self.reader.seek_to_beginning(*new)
            self.partitions = partitions
        return sorted(partitions)
