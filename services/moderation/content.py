"""What the platform says its public content is (platform.content), checked on arrival, report or not.

`record_content` is the handler of `platform.content`. An update newer than the
one held replaces moderation's projection (`platform_content`): kind, owner,
title, text, media. `check_content` then runs public content through every
automated check (`detection.Checks`: text banks, PDQ media banks, the
classifier), keeps the classifier's score and model version with the facts,
replaces the item's bank matches by what the facts match now, releases the
reports that waited for it and, when something matched or reports waited, judges
the item as a report would (reports.judge_item): a high-severity match or a
score at the model's delist threshold delists, any other match queues it for a
human, proactively when no one reported it.

`hand_over_unknown` (a background job) queues for humans the reports about
content the platform has not described within `unknown_content_wait_hours`.
`recheck_public_content` (a background job) runs `check_content` again, in
throttled batches, on public content checked with other banks or another model.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import asyncpg
from pydantic import ValidationError

from warden.contract.envelope import now as current_time
from warden.contract.events import ContentMedia, ContentRemoved, ContentUpdated
from warden.runtime.jobs import every
from warden.runtime.service import Context, ServiceContext

from moderation import metrics, scoring
from moderation.banks import Detection
from moderation.config import ModerationConfig
from moderation.detection import CLASSIFIER, Checks, model_facts, model_reason
from moderation.handlers import Emitter, delist_all
from moderation.reports import Item, Outcome, enqueue_all, judge_item, read_windows

log = logging.getLogger(__name__)


async def record_content(ctx: Context, event: ContentUpdated | ContentRemoved, *, checks: Checks,
                         cfg: ModerationConfig) -> None:
    if isinstance(event, ContentRemoved):
        await remove_content(ctx.conn, event)
        return
    if not await project(ctx.conn, event):
        return  # an older update than the one held, or one from before the content was removed
    await check_content(ctx.conn, event, checks, cfg, ctx)


async def check_content(conn: asyncpg.Connection, event: ContentUpdated, checks: Checks, cfg: ModerationConfig,
                        effects: Emitter) -> None:
    """Run the automated checks on the platform's facts (on arrival, on change, and again when the banks or the
    model change) and act on them: bank matches replaced, the classifier's score kept, waiting reports
    released, the item judged."""
    at = current_time()
    row = await conn.fetchrow(
        """INSERT INTO content (content_id, kind, first_reported_at) VALUES ($1, $2, $3)
           ON CONFLICT (content_id) DO UPDATE SET kind = EXCLUDED.kind, updated_at = now()
           RETURNING state, cleared_at""", event.content_id, event.kind, at)
    check = checks.check(event)
    detections, score = check.detections, check.score
    await conn.execute(
        """UPDATE platform_content SET model_score = $2, model_label = $3, model_version = $4, checked_with = $5,
               checked_at = $6 WHERE content_id = $1""", event.content_id, score.score if score else None,
        score.label if score else None, score.version if score else None, checks.fingerprint, at)
    await replace_bank_matches(conn, event.content_id, detections, at, cfg)
    released = await conn.fetchval(
        """WITH released AS (UPDATE reports SET pending_since = NULL WHERE content_id = $1 AND pending_since IS NOT NULL
                             RETURNING 1) SELECT count(*) FROM released""", event.content_id)
    if not detections and not released:
        return  # nothing matched and no report waited: the window, judged when its reports came, is unchanged
    item = Item(row["state"], row["cleared_at"], new=False, known=True,
                high_severity=[d.category for d in detections if d.high_severity])
    await read_windows(conn, {event.content_id: item}, at, cfg)
    reported = await conn.fetchrow(
        """SELECT (array_agg(reason ORDER BY contribution DESC))[1] AS reason, bool_or(trusted) AS trusted
           FROM reports WHERE content_id = $1 AND reported_at >= $2 AND NOT suspended""",
        event.content_id, scoring.window_start(at, row["cleared_at"], cfg))
    reason = next((d.category for d in sorted(detections, key=lambda d: (not d.high_severity,
                                                                         d.bank_id.startswith(CLASSIFIER)))), None)
    # The classifier delists on its own only content no human has cleared: after a moderator relisted or kept
    # it, a high score queues it again instead of overruling them.
    model = (model_facts(score, checks.delist_threshold), model_reason(score.label)) \
        if score and score.delist and row["cleared_at"] is None else None
    outcome = Outcome()
    judge_item(event.content_id, item, outcome, cfg=cfg, at=at, trusted=bool(reported["trusted"]),
               reason=reason or reported["reason"] or "other",
               source="notice" if reported["reason"] else "proactive", model=model)
    await delist_all(conn, outcome.delistings, human=None, now=at, cfg=cfg, effects=effects)
    await enqueue_all(conn, outcome)


async def project(conn: asyncpg.Connection, event: ContentUpdated) -> bool:
    """The platform's facts, if newer than those held; True when they were taken."""
    return bool(await conn.fetchval(
        """INSERT INTO platform_content (content_id, kind, owner_account_id, title, text, language, public_in_search,
                                         media, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
           ON CONFLICT (content_id) DO UPDATE SET kind = EXCLUDED.kind, owner_account_id = EXCLUDED.owner_account_id,
               title = EXCLUDED.title, text = EXCLUDED.text, language = EXCLUDED.language,
               public_in_search = EXCLUDED.public_in_search, media = EXCLUDED.media,
               created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, removed_at = NULL,
               received_at = now()
           WHERE platform_content.updated_at < EXCLUDED.updated_at
             AND (platform_content.removed_at IS NULL OR platform_content.removed_at < EXCLUDED.updated_at)
           RETURNING true""",
        event.content_id, event.kind, event.owner_account_id, event.title, event.text, event.language,
        event.public_in_search, json.dumps([m.model_dump() for m in event.media]), event.created_at,
        event.updated_at))


async def replace_bank_matches(conn: asyncpg.Connection, content_id: str, detections: list[Detection], at,
                               cfg: ModerationConfig) -> None:
    """The content's bank matches become what its current facts match (a match already held keeps its time)."""
    banks = [d.bank_id for d in detections]
    await conn.execute("DELETE FROM bank_matches WHERE content_id = $1 AND NOT bank_id = ANY($2::text[])",
                       content_id, banks)
    if detections:
        await conn.execute(
            """INSERT INTO bank_matches (content_id, bank_id, contribution, matched_at, category, high_severity)
               SELECT $1, u.bank_id, u.contribution, $2, u.category, u.high
               FROM unnest($3::text[], $4::float8[], $5::text[], $6::bool[]) AS u(bank_id, contribution, category, high)
               ON CONFLICT (content_id, bank_id) DO UPDATE SET contribution = EXCLUDED.contribution,
                   category = EXCLUDED.category, high_severity = EXCLUDED.high_severity""",
            content_id, at, banks, [scoring.contribution(d.category, d.weight, cfg) for d in detections],
            [d.category for d in detections], [d.high_severity for d in detections])


async def remove_content(conn: asyncpg.Connection, event: ContentRemoved) -> None:
    """Gone from the platform: nothing left to match or to review."""
    removed = await conn.fetchval(
        """UPDATE platform_content SET removed_at = $2 WHERE content_id = $1
               AND (removed_at IS NULL OR removed_at < $2) AND updated_at <= $2 RETURNING true""",
        event.content_id, event.removed_at)
    if removed:
        await conn.execute("DELETE FROM bank_matches WHERE content_id = $1", event.content_id)
        await conn.execute("DELETE FROM queue WHERE content_id = $1", event.content_id)


async def hand_over_unknown(runtime: ServiceContext, cfg: ModerationConfig) -> None:
    """Every `unknown_content_sweep_seconds`: reports still waiting for the platform's facts after
    `unknown_content_wait_hours` go to the queue, for a human to judge on what the reporters claim."""
    async def step() -> None:
        async with runtime.unit_of_work() as uow:
            await queue_unknown(uow.conn, current_time() - timedelta(hours=cfg.unknown_content_wait_hours))

    await every(runtime.stopping, cfg.unknown_content_sweep_seconds, step, "unknown_content")


async def queue_unknown(conn: asyncpg.Connection, before) -> None:
    await conn.execute(
        """WITH due AS (UPDATE reports SET pending_since = NULL WHERE pending_since <= $1
                        RETURNING content_id, reason, trusted, contribution)
           INSERT INTO queue (content_id, priority, urgent, trusted, score, reason, automated, coordinated, source)
           SELECT content_id, CASE WHEN bool_or(trusted) THEN 1000 ELSE 0 END + least(sum(contribution), 999),
                  false, bool_or(trusted), sum(contribution), (array_agg(reason ORDER BY contribution DESC))[1],
                  NULL, false, 'unknown_content'
           FROM due GROUP BY content_id
           ON CONFLICT (content_id) DO UPDATE SET priority = greatest(queue.priority, EXCLUDED.priority),
               trusted = queue.trusted OR EXCLUDED.trusted""", before)


async def recheck_public_content(runtime: ServiceContext, checks: Checks, cfg: ModerationConfig) -> None:
    """Retroactive checks: public content last checked with other banks or another model (`Checks.fingerprint`)
    is checked again, `recheck_batch` items per transaction with `recheck_pause_seconds` between batches, so that
    a new bank or model never floods the database; `warden_moderation_recheck_pending` shows what is left. Each
    batch takes its rows with SKIP LOCKED: replicas share the work, and content being updated is left to its
    update (which checks it with the current checks anyway)."""
    async def step() -> float | None:
        async with runtime.unit_of_work() as uow:
            done = await recheck_batch(uow.conn, checks, cfg, uow)
            uow.on_commit(lambda n=done: metrics.RECHECKED.inc(n))
        async with runtime.pool.acquire(timeout=5) as conn:
            metrics.RECHECK_PENDING.set(await conn.fetchval(
                """SELECT count(*) FROM platform_content WHERE removed_at IS NULL AND public_in_search
                       AND checked_with IS DISTINCT FROM $1""", checks.fingerprint, timeout=5))
        return cfg.recheck_pause_seconds if done else None

    await every(runtime.stopping, cfg.recheck_idle_seconds, step, "recheck")


async def recheck_batch(conn: asyncpg.Connection, checks: Checks, cfg: ModerationConfig, effects: Emitter) -> int:
    """Check up to `recheck_batch` public items not checked with the current checks; how many were."""
    rows = await conn.fetch(
        """SELECT content_id, kind, owner_account_id, title, text, language, public_in_search, media::text AS media,
                  created_at, updated_at FROM platform_content
           WHERE removed_at IS NULL AND public_in_search AND checked_with IS DISTINCT FROM $1
           ORDER BY content_id LIMIT $2 FOR UPDATE SKIP LOCKED""", checks.fingerprint, cfg.recheck_batch)
    for row in rows:
        try:
            facts = facts_of_row(row)
        except ValidationError:  # projected from a valid event, so not expected; never stop the job over one row
            log.warning("projected facts no longer valid; not re-checked", extra={"content_id": row["content_id"]})
            await conn.execute("UPDATE platform_content SET checked_with = $2 WHERE content_id = $1",
                               row["content_id"], checks.fingerprint)
            continue
        await check_content(conn, facts, checks, cfg, effects)
    return len(rows)


def facts_of_row(row: asyncpg.Record) -> ContentUpdated:
    """The platform's facts as projected, in the event's shape (what the checks read)."""
    return ContentUpdated(content_id=row["content_id"], kind=row["kind"], owner_account_id=row["owner_account_id"],
                          title=row["title"], text=row["text"], language=row["language"],
                          public_in_search=row["public_in_search"],
                          media=[ContentMedia(**m) for m in json.loads(row["media"])],
                          created_at=row["created_at"], updated_at=row["updated_at"])
