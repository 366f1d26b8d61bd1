"""The inbox: one row per handled CloudEvent (`source` + `id`), so that a redelivery is a no-op.

A batch claims its events before handling them (`claim_fresh`), in its transaction. Rows older
than the window are deleted, a small batch at a time (`prune_inbox`): a row only has to
outlive any redelivery: a restart redelivers at most what was not committed, and a
consumer group reset to the earliest offset re-reads what the topics still hold (7 days
by default, docs/deployment.md). A dead-lettered event's row says so (`dead_lettered`); a replay
of its dead letter (dead_letters.py) takes that claim back, once. The window (`WARDEN_INBOX_RETENTION_DAYS`, 30) must
exceed that retention; past it a row protects nothing and only grows the table.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from typing import TYPE_CHECKING

import asyncpg

from warden.runtime import metrics
from warden.runtime.database import after_transient, rows_param
from warden.runtime.dead_letters import is_replay
from warden.runtime.jobs import every

if TYPE_CHECKING:
    from warden.runtime.batch import Decoded


async def claim_in_inbox(conn: asyncpg.Connection, items: list[Decoded]) -> set[tuple[str, str]]:
    """Record a batch's events in the inbox before handling them, in the batch's transaction.

    Returns the keys this transaction claimed; the others were handled before. A
    consumer handling the same events at the same time (a rebalance) holds their rows:
    this insert waits for its transaction, then claims nothing it committed, so an
    event's effects commit once. Rolled back with the batch, the claim goes too.
    A replayed dead letter also claims its event's row if that row was dead-lettered
    (the update takes the row's lock: two replays at once, one claims).
    """
    rows = await conn.fetch(
        "INSERT INTO inbox (source, event_id, topic)"
        " SELECT r->>0, r->>1, r->>2 FROM jsonb_array_elements($1::jsonb) AS r"
        " ON CONFLICT DO NOTHING RETURNING source, event_id",
        rows_param([(*i.inbox_key, i.record.topic) for i in items]))
    claimed = {(r["source"], r["event_id"]) for r in rows}
    replays = [i.inbox_key for i in items if i.inbox_key not in claimed and is_replay(i.record.headers)]
    if replays:
        rows = await conn.fetch(
            "UPDATE inbox SET dead_lettered = false, processed_at = now()"
            " FROM unnest($1::text[], $2::text[]) AS r(source, event_id)"
            " WHERE inbox.source = r.source AND inbox.event_id = r.event_id AND inbox.dead_lettered"
            " RETURNING inbox.source, inbox.event_id",
            [k[0] for k in replays], [k[1] for k in replays])
        claimed |= {(r["source"], r["event_id"]) for r in rows}
    return claimed


async def claim_fresh(conn: asyncpg.Connection, items: list[Decoded],
                      deduplicated: Callable[[Decoded], bool] | None = None) -> list[Decoded]:
    """The batch's items this transaction claimed (claim_in_inbox), in order; of an event
    repeated inside the batch, the first copy only. The others are duplicates. Items
    `deduplicated` picks (their handler drops redeliveries itself) are fresh without a claim."""
    unclaimed = {id(item) for item in items if deduplicated(item)} if deduplicated is not None else set()
    claiming = [item for item in items if id(item) not in unclaimed] if unclaimed else items
    claimed = await claim_in_inbox(conn, claiming) if claiming else set()
    fresh = []
    for item in items:
        if id(item) in unclaimed:
            fresh.append(item)
        elif item.inbox_key in claimed:
            claimed.discard(item.inbox_key)
            fresh.append(item)
    return fresh


async def prune_inbox_once(conn: asyncpg.Connection, cutoff: datetime, batch_size: int) -> int:
    """Delete up to `batch_size` inbox rows processed before `cutoff`; how many went."""
    status = await conn.execute(
        "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM inbox WHERE processed_at < $1 ORDER BY processed_at LIMIT $2))", cutoff, batch_size)
    return int(status.split()[-1])


async def prune_inbox(service: str, pool: asyncpg.Pool, stopping: asyncio.Event, *, retention_days: float,
                      interval_s: float, batch_size: int, pause_s: float = 0.05) -> None:
    """Every `interval_s` (a background job, warden.runtime.jobs): delete what is past the window in batches
    of `batch_size`, pausing between batches so that the consumer's transactions never wait long behind a
    delete."""
    async def step() -> None:
        cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
        try:
            while not stopping.is_set():
                async with pool.acquire() as conn:
                    deleted = await prune_inbox_once(conn, cutoff, batch_size)
                metrics.INBOX_PRUNED.inc(deleted)
                if deleted < batch_size:
                    return
                await asyncio.sleep(pause_s)
        except Exception as exc:
            await after_transient(pool, exc)
            raise

    await every(stopping, interval_s, step, "inbox_pruning")
