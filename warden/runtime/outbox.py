"""Transactional outbox: rows written with the state change, relayed to Kafka afterwards."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import metrics
from warden.runtime.backoff import Backoff
from warden.runtime.database import is_transient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    event_type: str = ""  # for metrics; empty for dead letters


def event_row(service: str, topic_name: str, event_type: str, data: BaseModel | dict[str, Any]) -> OutboxRow:
    """Build the outbox row of one contract event; refuses types the topic does not carry."""
    topic = TOPICS[topic_name]
    if event_type not in topic.event_types:
        raise ValueError(f"{event_type} is not carried by {topic_name}")
    payload = data.model_dump(mode="json", exclude_none=False) if isinstance(data, BaseModel) else data
    key = topic.key_of(payload)
    value, headers = encode_structured(new_event(event_type, f"/warden/{service}", payload))
    return OutboxRow(topic_name, key.encode() if key is not None else None, value, headers, event_type)


async def write_rows(conn: asyncpg.Connection, rows: list[OutboxRow]) -> None:
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, header_names, header_values) VALUES ($1, $2, $3, $4, $5)",
        [(r.topic, r.key, r.value, [h[0] for h in r.headers], [h[1] for h in r.headers]) for r in rows],
    )


class OutboxRelay:
    """Publishes outbox rows in id order; deletes them only after the broker acknowledged."""

    def __init__(self, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, *,
                 batch_size: int, retry_initial_s: float, retry_max_s: float):
        self.service = service
        self.pool = pool
        self.producer = producer
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.wakeup = asyncio.Event()
        self.healthy = True
        self._backlog_counted_at = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            # Cleared BEFORE the pass, not after: a commit that signals while this pass runs (its
            # rows maybe not yet visible to our SELECT) must make the next wait return at once.
            # Clearing after the pass lost that signal, and the rows waited for the next commit
            # or the 1 s timeout (the last requests of every bench run took ~1.1 s).
            self.wakeup.clear()
            try:
                sent = await self.publish_batch()
                self.healthy = True
                backoff.reset()
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, KafkaError)):
                    log.exception("outbox relay failed", extra={"error_type": type(exc).__name__})
                metrics.TRANSIENT_ERRORS.labels(self.service, "outbox").inc()
                self.healthy = False
                if stopping.is_set():
                    return  # what is left stays in the outbox for the next start
                log.warning("outbox relay retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s})
                await backoff.wait()
                continue
            if sent >= self.batch_size:
                continue  # more is waiting
            if stopping.is_set():
                return  # drained
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    async def publish_batch(self) -> int:
        # Two statements, not one `DELETE ... WHERE id IN (SELECT ... SKIP LOCKED) RETURNING`: that
        # one slowed down with every dead row the outbox held (docs/performance.md, fourth session).
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, header_names, header_values FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", self.batch_size)
            if rows:
                futures = [
                    await self.producer.send(
                        r["topic"], r["value"], key=r["key"],
                        headers=list(zip(r["header_names"], r["header_values"])))
                    for r in rows
                ]
                await asyncio.gather(*futures)
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
                for r in rows:
                    metrics.OUTBOX_PUBLISHED.labels(self.service, r["topic"]).inc()
            await self._gauge_backlog(conn, len(rows))
            return len(rows)

    async def _gauge_backlog(self, conn: asyncpg.Connection, taken: int) -> None:
        """A short batch took every unlocked row: nothing is waiting, no count needed. A full
        batch means a backlog: count it, at most once a second (count(*) scans the table)."""
        if taken < self.batch_size:
            metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
            return
        now = asyncio.get_running_loop().time()
        if now - self._backlog_counted_at >= 1.0:
            self._backlog_counted_at = now
            backlog = await conn.fetchval("SELECT count(*) FROM outbox") - taken
            metrics.OUTBOX_BACKLOG.labels(self.service).set(max(backlog, 0))
