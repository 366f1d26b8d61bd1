"""Nothing faust skips is lost: moderation keeps its own place in each input partition.

Faust's offset bookkeeping can run past events it never handed to the agent when
partitions are reassigned while it is fetching (a restart after kill -9 does
that): a prefetched record moves its read offset ahead of the seek to the
committed offset and the records between are dropped, or recorded as a gap that
counts as acknowledged (faust-streaming issues #221 and #606; seen here in the
chaos runs, where it lost reports). So the agent does not trust faust's offsets
for completeness. Each batch's transaction also records, per input partition,
the next offset moderation has handled (`stream_progress`); before a batch is
handled, whatever lies between that offset and the batch's records is read
straight from the broker and handled first. Reading too much is harmless (the
inbox drops what was already handled); the recorded offset never runs ahead of
what committed.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from warden.runtime import kafka
from warden.runtime.backoff import Backoff

from moderation import metrics

log = logging.getLogger(__name__)
Partition = tuple[str, int]


def missing_ranges(expected: int | None, offsets: Iterable[int]) -> list[tuple[int, int]]:
    """The inclusive offset ranges from `expected` up to the highest of `offsets` that `offsets` lacks.

    `expected` None (nothing handled yet on this partition): nothing is missing."""
    present = sorted(set(offsets))
    if expected is None or not present:
        return []
    ranges, cursor = [], expected
    for offset in present:
        if offset > cursor:
            ranges.append((cursor, offset - 1))
        cursor = max(cursor, offset + 1)
    return ranges


def next_offsets(records: Iterable[ConsumerRecord]) -> dict[Partition, int]:
    """Per partition, one past the highest offset handled."""
    progress: dict[Partition, int] = {}
    for record in records:
        partition = (record.topic, record.partition)
        progress[partition] = max(progress.get(partition, 0), record.offset + 1)
    return progress


async def load_progress(conn: asyncpg.Connection, partitions: Iterable[Partition]) -> dict[Partition, int]:
    wanted = list(partitions)
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM stream_progress"
        " JOIN unnest($1::text[], $2::int[]) AS w(topic, partition) USING (topic, partition)",
        [p[0] for p in wanted], [p[1] for p in wanted])
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def save_progress(conn: asyncpg.Connection, progress: dict[Partition, int]) -> None:
    """Only ever forward: a redelivered batch (or a second worker mid-rebalance) cannot move it back."""
    if not progress:
        return
    await conn.execute(
        "INSERT INTO stream_progress (topic, partition, next_offset)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
        " ON CONFLICT (topic, partition) DO UPDATE"
        " SET next_offset = greatest(stream_progress.next_offset, EXCLUDED.next_offset)",
        [p[0] for p in progress], [p[1] for p in progress], list(progress.values()))


class GapReader:
    """Reads given offsets of a partition straight from the broker (its own consumer, no group)."""

    def __init__(self, bootstrap: str, stopping: asyncio.Event, retry_initial_s: float = 0.2,
                 retry_max_s: float = 5.0):
        self.bootstrap, self.stopping = bootstrap, stopping
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one consumer, assigned and sought by one reader at a time

    async def read(self, partition: Partition, ranges: list[tuple[int, int]]) -> list[ConsumerRecord]:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                async with self._lock:
                    records = [r for first, last in ranges for r in await self._read_range(partition, first, last)]
                metrics.SKIPPED_EVENTS_RECOVERED.labels(partition[0]).inc(len(records))
                log.warning("events skipped by the stream consumer read back from the broker", extra={
                    "topic": partition[0], "partition": partition[1], "ranges": ranges, "events": len(records)})
                return records
            except KafkaError as exc:
                if self.stopping.is_set():
                    raise
                log.warning("reading skipped events failed, retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s})
                await self.close()
                await backoff.wait()

    async def end_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        if not partitions:
            return {}
        async with self._lock:
            consumer = await self._started()
            ends = await consumer.end_offsets([TopicPartition(*p) for p in partitions])
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def _read_range(self, partition: Partition, first: int, last: int) -> list[ConsumerRecord]:
        consumer = await self._started()
        tp = TopicPartition(*partition)
        consumer.assign([tp])
        consumer.seek(tp, first)
        found: list[ConsumerRecord] = []
        # The batch holds a record past `last`, so the log reaches beyond it; offsets that are
        # not there (deleted by retention) make the consumer reset to the earliest and move on.
        while await consumer.position(tp) <= last:
            if self.stopping.is_set():
                raise asyncio.CancelledError("stopping: the batch is redelivered after the restart")
            batch = await consumer.getmany(tp, timeout_ms=1000)
            found += [r for r in batch.get(tp, []) if first <= r.offset <= last]
        return found

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = kafka.consumer(self.bootstrap, None, fetch_max_wait_ms=500,
                                            max_partition_fetch_bytes=1024 * 1024)
            await self._consumer.start()
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
