"""Consumed events to Postgres transactions: inbox, effects, outbox rows, DLQ.

The faust agents (streams.py) hand events here: reports a batch at a time
(`score_batch`: one transaction, set-based writes, replayed event by event when a
handler fails), appeals one by one. Effects never live only in faust: the
delisting, the statement of reasons and their outbox rows commit together, and
the inbox (CloudEvent source + id) makes a redelivered event a no-op.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from warden.contract.envelope import EventRejected, now
from warden.runtime import metrics as shared
from warden.runtime.backoff import Backoff
from warden.runtime.consumer import Decoded, claim_fresh, claim_in_inbox, dlq_row
from warden.runtime.database import is_transient
from warden.runtime.outbox import OutboxRow, write_rows

from moderation import continuity, handlers, scoring
from moderation.banks import Scorer
from moderation.config import ModerationConfig
from moderation.handlers import Effects
from moderation.scoring import Reports

log = logging.getLogger(__name__)
SERVICE = "moderation"


class _Replay(Exception):
    """A handler failed in a batch's optimistic pass: roll the batch back and replay it event by event."""


class Engine:
    def __init__(self, pool: asyncpg.Pool, cfg: ModerationConfig, scorer: Scorer, wakeup: asyncio.Event,
                 stopping: asyncio.Event, retry_initial_s: float = 0.2, retry_max_s: float = 5.0):
        self.pool, self.cfg, self.scorer = pool, cfg, scorer
        self.wakeup, self.stopping = wakeup, stopping
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.database_ok = True

    async def retrying(self, work):
        """Transient database failures are retried with backoff; the event is never skipped."""
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                result = await work()
                self.database_ok = True
                return result
            except Exception as exc:
                if not is_transient(exc) or self.stopping.is_set():
                    raise
                self.database_ok = False
                shared.TRANSIENT_ERRORS.labels(SERVICE, "database").inc()
                log.warning("database failed, retrying",
                            extra={"error_type": type(exc).__name__, "delay_s": backoff.delay_s})
                await backoff.wait()

    async def dead_letter(self, item: Decoded) -> None:
        assert item.rejection is not None
        await self.retrying(lambda: self._commit(item, [dlq_row(SERVICE, item.record, item.rejection)], Effects()))
        log.info("event dead-lettered", extra={"topic": item.record.topic, "partition": item.record.partition,
                                               "offset": item.record.offset, "reason": item.rejection.reason})

    async def score(self, item: Decoded, reports: Reports) -> Reports:
        """Fold one valid report into its item's window; returns the window to store in the faust table."""
        async def work() -> Reports:
            effects = Effects()
            async with self.pool.acquire() as conn, conn.transaction():
                if not await claim_in_inbox(conn, [item]):
                    return await self._replayed(conn, item, reports)
                try:
                    async with conn.transaction():
                        updated = await handlers.score_report(conn, item.payload, reports, scorer=self.scorer,
                                                              cfg=self.cfg, now=now(), effects=effects)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.error("report handler failed", extra={"error_type": type(exc).__name__})
                    effects = Effects([dlq_row(SERVICE, item.record,
                                               EventRejected("handler_error", type(exc).__name__))])
                    updated = reports
                await write_rows(conn, effects.rows)
            self._after(item, effects)
            return updated
        return await self.retrying(work)

    async def score_batch(self, items: list[Decoded], window: Callable[[str], Reports],
                          progress: dict[continuity.Partition, int] | None = None) -> dict[str, Reports]:
        """Fold valid reports, in order, into their items' windows in ONE transaction.

        `window(content_id)` reads an item's window from the faust table; the windows to
        store back (after this returns, i.e. after the commit) are returned. The inbox
        claimed in one statement, the reporter, content and report rows set-based, then
        each report's scoring; the outbox rows in one statement. If any handler fails,
        the transaction is rolled back and the batch replayed through `score`, one
        transaction and one savepoint per event, so only the failing event is
        dead-lettered. Transient database errors retry the whole batch. `progress`
        (continuity.py: where the batch leaves each input partition) commits with it.
        """
        async def work() -> dict[str, Reports]:
            windows: dict[str, Reports] = {}
            effects = Effects()
            at = now()
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await claim_fresh(conn, items)
                first = {id(i) for i in fresh}
                try:
                    recorded = await handlers.record_reports(conn, [i.payload for i in fresh], cfg=self.cfg, now=at)
                    index = 0
                    for item in items:
                        content_id = item.payload.content.id
                        if content_id not in windows:
                            windows[content_id] = window(content_id)
                        if id(item) not in first:  # redelivered: put back what the table may have lost
                            windows[content_id] = await self._replayed(conn, item, windows[content_id])
                            continue
                        windows[content_id] = await handlers.fold_report(
                            conn, recorded, index, item.payload, windows[content_id], scorer=self.scorer,
                            cfg=self.cfg, now=at, effects=effects)
                        index += 1
                    await write_rows(conn, effects.rows)
                    await continuity.save_progress(conn, progress or {})
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.warning("report batch replayed event by event", extra={"error_type": type(exc).__name__,
                                                                               "events": len(items)})
                    raise _Replay from exc
            self._after_batch(fresh, effects)
            return windows
        try:
            return await self.retrying(work)
        except _Replay:
            windows = await self._one_by_one(items, window)
            await self.record_progress(progress or {})
            return windows

    async def expected_offsets(self, partitions: list[continuity.Partition]) -> dict[continuity.Partition, int]:
        """Where moderation's handling of each input partition has reached (continuity.py)."""
        async def work():
            async with self.pool.acquire() as conn:
                return await continuity.load_progress(conn, partitions)
        return await self.retrying(work)

    async def record_progress(self, progress: dict[continuity.Partition, int]) -> None:
        """For events handled in their own transactions (appeals, dead letters, a replayed batch): after them."""
        async def work():
            async with self.pool.acquire() as conn:
                await continuity.save_progress(conn, progress)
        if progress:
            await self.retrying(work)

    async def _one_by_one(self, items: list[Decoded], window: Callable[[str], Reports]) -> dict[str, Reports]:
        """The batch as it was before batching: each report its own transaction, a handler failure dead-lettered."""
        windows: dict[str, Reports] = {}
        for item in items:
            content_id = item.payload.content.id
            current = windows[content_id] if content_id in windows else window(content_id)
            try:
                windows[content_id] = await self.score(item, current)
            except Exception as exc:
                if self.stopping.is_set():
                    raise
                # Not the handler (that is dead-lettered) but the inbox/outbox write itself: as when one
                # event crashed the faust agent, the event is skipped and the batch goes on.
                log.error("report not processed", extra={"error_type": type(exc).__name__})
                windows[content_id] = current
        return windows

    async def appeal(self, item: Decoded) -> None:
        async def work() -> None:
            effects = Effects()
            async with self.pool.acquire() as conn, conn.transaction():
                if not await claim_in_inbox(conn, [item]):
                    return
                status = await handlers.receive_appeal(conn, item.payload, now=now())
                effects.after_commit.append(lambda: handlers.metrics.APPEALS.labels(status).inc())
                await write_rows(conn, effects.rows)
            self._after(item, effects)
        await self.retrying(work)

    async def _replayed(self, conn: asyncpg.Connection, item: Decoded, reports: Reports) -> Reports:
        """A redelivered report: put it back into the window if the table lost it (crash after commit)."""
        row = await conn.fetchrow("""SELECT r.contribution, r.reported_at, c.cleared_at FROM reports r
                                     JOIN content c USING (content_id) WHERE reporter_id = $1 AND report_id = $2""",
                                  item.payload.reporter_id, item.payload.report_id)
        if row is None or row["contribution"] == 0:
            return reports
        start = scoring.window_start(now(), row["cleared_at"], self.cfg)
        return scoring.add_report(reports, item.payload.reporter_id, row["contribution"], row["reported_at"], start)

    async def _commit(self, item: Decoded, rows: list[OutboxRow], effects: Effects) -> None:
        effects.rows.extend(rows)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_in_inbox(conn, [item]):
                return
            await write_rows(conn, effects.rows)
        self._after(item, effects)

    def _after(self, item: Decoded, effects: Effects) -> None:
        """Metrics only once committed, then wake the relay."""
        dead = any(r.topic.endswith(".dlq") for r in effects.rows)
        shared.EVENTS_CONSUMED.labels(SERVICE, item.record.topic, "dead_lettered" if dead else "processed").inc()
        self._committed(effects)

    def _after_batch(self, items: list[Decoded], effects: Effects) -> None:
        """`_after` for a committed batch (no report is dead-lettered on the batch path)."""
        for item in items:
            shared.EVENTS_CONSUMED.labels(SERVICE, item.record.topic, "processed").inc()
        self._committed(effects)

    def _committed(self, effects: Effects) -> None:
        shared.count_outgoing(SERVICE, effects.rows)
        for hook in effects.after_commit:
            hook()
        if effects.rows:
            self.wakeup.set()

    async def run_in_transaction(self, action):
        """For the HTTP API: `action(conn, effects)` in one transaction, outbox rows included."""
        effects = Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            result = await action(conn, effects)
            await write_rows(conn, effects.rows)
        self._committed(effects)
        return result
