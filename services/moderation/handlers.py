"""Moderation's effects, each inside the caller's Postgres transaction.

Every function here changes state through `conn` and returns the outbox rows to
write in the same transaction, so a decision and its events commit together.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from warden.contract.events import (AppealSubmitted, ContentDelisted, ContentRelisted, ModerationDecision,
                                    ReportSubmitted, ViolationConfirmed)
from warden.runtime.outbox import OutboxRow, event_row

from moderation import metrics, scoring
from moderation.banks import Scorer
from moderation.config import ModerationConfig
from moderation.scoring import Action, MisuseStep, QueueRank, Reports
from moderation.statements import appeal_refusal, statement

log = logging.getLogger(__name__)
SERVICE = "moderation"
DELISTED, RELISTED = "warden.search.content.delisted.v1", "warden.search.content.relisted.v1"
DECISION, VIOLATION = "warden.moderation.decision.v1", "warden.moderation.violation.confirmed.v1"


class Conflict(Exception):
    """A moderator's decision that the content's current state does not allow (HTTP 409)."""


class NotFound(Exception):
    pass


@dataclass
class Effects:
    rows: list[OutboxRow] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)  # metrics, once committed

    def emit(self, topic: str, event_type: str, data) -> None:
        self.rows.append(event_row(SERVICE, topic, event_type, data))


# --- reports --------------------------------------------------------------------------

async def score_report(conn: asyncpg.Connection, report: ReportSubmitted, reports: Reports, *, scorer: Scorer,
                       cfg: ModerationConfig, now: datetime, effects: Effects) -> Reports:
    """Record a report, fold it into the item's window and act on the score; returns the item's new reports."""
    content, reason = report.content, report.reason.value
    reporter = await _reporter(conn, report.reporter_id, cfg)
    suspended = reporter["suspended_until"] is not None and reporter["suspended_until"] > now
    trusted = report.reporter_id in cfg.trusted_flaggers
    item = await conn.fetchrow(
        """INSERT INTO content (content_id, kind, owner_account_id, first_reported_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (content_id) DO UPDATE SET owner_account_id = coalesce(EXCLUDED.owner_account_id,
               content.owner_account_id), updated_at = now()
           RETURNING state, cleared_at, first_reported_at""",
        content.id, content.kind, content.owner_account_id, now)
    weight = scoring.reporter_weight(reporter["trust"], trusted, cfg)
    value = 0.0 if suspended else scoring.contribution(reason, weight, cfg)
    reported_at = min(report.reported_at, now)
    inserted = await conn.fetchval(
        """INSERT INTO reports (report_id, reporter_id, content_id, reason, surface, reported_at, contribution,
                                trusted, suspended) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT DO NOTHING RETURNING true""",
        report.report_id, report.reporter_id, content.id, reason, report.surface, reported_at, value, trusted,
        suspended)
    recorded = _Recorded(bool(inserted), suspended, trusted, value, reported_at)
    return await _fold(conn, report, reports, dict(item), recorded, scorer=scorer, cfg=cfg, now=now, effects=effects)


@dataclass
class _Recorded:
    """How one report was written: new or not, and what it weighs."""
    inserted: bool
    suspended: bool
    trusted: bool
    value: float
    reported_at: datetime


@dataclass
class ReportBatch:
    """A batch of reports written set-based (reporters, content rows, report rows: one statement each).

    `fold_report` then does, report by report in order, what `score_report` does after its writes; the
    content rows are kept here so a delisting earlier in the batch is seen by the later reports.
    """
    items: dict[str, dict]
    recorded: list[_Recorded]


async def record_reports(conn: asyncpg.Connection, batch: list[ReportSubmitted], *, cfg: ModerationConfig,
                         now: datetime) -> ReportBatch:
    """The writes of `score_report` for a whole batch, in three statements."""
    if not batch:
        return ReportBatch({}, [])
    reporter_ids = sorted({r.reporter_id for r in batch})  # sorted: row locks in one order
    reporters = {r["reporter_id"]: r for r in await conn.fetch(
        """INSERT INTO reporters (reporter_id, trust) SELECT unnest($1::text[]), $2
           ON CONFLICT (reporter_id) DO UPDATE SET reporter_id = EXCLUDED.reporter_id
           RETURNING reporter_id, trust, warned_at, suspended_until""", reporter_ids, cfg.trust_neutral)}
    # Per item: kind of its first report, owner of its last report naming one (what upserts in order leave).
    kinds: dict[str, str] = {}
    owners: dict[str, str | None] = {}
    for report in batch:
        kinds.setdefault(report.content.id, report.content.kind)
        if report.content.owner_account_id is not None:
            owners[report.content.id] = report.content.owner_account_id
        owners.setdefault(report.content.id, None)
    content_ids = sorted(kinds)
    items = {r["content_id"]: dict(r) for r in await conn.fetch(
        """INSERT INTO content (content_id, kind, owner_account_id, first_reported_at)
           SELECT u.content_id, u.kind, u.owner, $4 FROM unnest($1::text[], $2::text[], $3::text[])
               AS u(content_id, kind, owner)
           ON CONFLICT (content_id) DO UPDATE SET owner_account_id = coalesce(EXCLUDED.owner_account_id,
               content.owner_account_id), updated_at = now()
           RETURNING content_id, state, cleared_at, first_reported_at""",
        content_ids, [kinds[c] for c in content_ids], [owners[c] for c in content_ids], now)}
    recorded = []
    for report in batch:
        reporter = reporters[report.reporter_id]
        suspended = reporter["suspended_until"] is not None and reporter["suspended_until"] > now
        trusted = report.reporter_id in cfg.trusted_flaggers
        weight = scoring.reporter_weight(reporter["trust"], trusted, cfg)
        value = 0.0 if suspended else scoring.contribution(report.reason.value, weight, cfg)
        recorded.append(_Recorded(False, suspended, trusted, value, min(report.reported_at, now)))
    new = {(r["reporter_id"], r["report_id"]) for r in await conn.fetch(
        """INSERT INTO reports (report_id, reporter_id, content_id, reason, surface, reported_at, contribution,
                                trusted, suspended)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                $7::float8[], $8::bool[], $9::bool[])
           ON CONFLICT DO NOTHING RETURNING reporter_id, report_id""",
        [r.report_id for r in batch], [r.reporter_id for r in batch], [r.content.id for r in batch],
        [r.reason.value for r in batch], [r.surface for r in batch], [x.reported_at for x in recorded],
        [x.value for x in recorded], [x.trusted for x in recorded], [x.suspended for x in recorded])}
    for report, x in zip(batch, recorded):
        key = (report.reporter_id, report.report_id)
        x.inserted = key in new
        new.discard(key)  # the same report twice in one batch: the second is a duplicate, as one by one
    return ReportBatch(items, recorded)


async def fold_report(conn: asyncpg.Connection, batch: ReportBatch, index: int, report: ReportSubmitted,
                      reports: Reports, *, scorer: Scorer, cfg: ModerationConfig, now: datetime,
                      effects: Effects) -> Reports:
    """`score_report` after its writes, for the `index`-th report of a recorded batch."""
    return await _fold(conn, report, reports, batch.items[report.content.id], batch.recorded[index],
                       scorer=scorer, cfg=cfg, now=now, effects=effects)


async def _fold(conn: asyncpg.Connection, report: ReportSubmitted, reports: Reports, item: dict, x: _Recorded, *,
                scorer: Scorer, cfg: ModerationConfig, now: datetime, effects: Effects) -> Reports:
    """Fold a recorded report into the item's window and act on the score (`item` is updated when delisted)."""
    content, reason = report.content, report.reason.value
    trusted, value, reported_at = x.trusted, x.value, x.reported_at
    if not x.inserted or x.suspended:
        outcome = "suspended_reporter" if x.suspended else "duplicate"
        effects.after_commit.append(lambda: metrics.REPORTS.labels(reason, outcome).inc())
        return reports
    start = scoring.window_start(now, item["cleared_at"], cfg)
    before = set(reports)
    reports = scoring.add_report(reports, report.reporter_id, value, reported_at, start)
    outcome = "counted" if report.reporter_id not in before else "duplicate"
    effects.after_commit.append(lambda: metrics.REPORTS.labels(reason, outcome).inc())
    detections = scorer.detect(content)
    for found in detections:  # an automated match counts like one more reporter
        reports = scoring.add_report(reports, f"bank:{found.bank_id}",
                                     scoring.contribution(found.category, found.weight, cfg), now, start)
    score = scoring.window_score(reports, start)
    high = [d for d in detections if d.high_severity]
    action = scoring.decide(score, bool(high), cfg)
    category = high[0].category if high else reason
    rank = QueueRank(urgent=bool(high), trusted=trusted, score=score)
    automated = ", ".join(f"{d.bank_id} ({d.how})" for d in detections) or None
    if item["state"] == "delisted":
        return reports
    if action is Action.delist:
        if high:
            facts = f"Content matched the bank of known {category.replace('_', ' ')} material ({automated})."
        else:
            facts = (f"Reports from {sum(1 for r in reports if not r.startswith('bank:'))} distinct reporters "
                     f"reached a score of {score:g} in {cfg.window_hours:g} h (delisting threshold "
                     f"{cfg.delist_threshold:g}).")
        await delist(conn, content.id, category, facts=facts, automated_detection=bool(detections), human=None,
                     first_reported_at=item["first_reported_at"], now=now, cfg=cfg, effects=effects)
        item["state"] = "delisted"
        await _enqueue(conn, content.id, QueueRank(True, trusted, score), category, automated)
        log.info("content delisted", extra={"content_id": content.id, "score": score})
    elif action is Action.review or trusted:
        await _enqueue(conn, content.id, rank, category, automated)
    log.debug("report scored", extra={"content_id": content.id, "score": score, "action": action.value})
    return reports


async def _reporter(conn: asyncpg.Connection, reporter_id: str, cfg: ModerationConfig) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO reporters (reporter_id, trust) VALUES ($1, $2)
           ON CONFLICT (reporter_id) DO UPDATE SET reporter_id = EXCLUDED.reporter_id
           RETURNING trust, warned_at, suspended_until""", reporter_id, cfg.trust_neutral)


async def _enqueue(conn: asyncpg.Connection, content_id: str, rank: QueueRank, reason: str,
                   automated: str | None) -> None:
    await conn.execute(
        """INSERT INTO queue (content_id, priority, urgent, trusted, score, reason, automated)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (content_id) DO UPDATE SET priority = greatest(queue.priority, EXCLUDED.priority),
               urgent = queue.urgent OR EXCLUDED.urgent, trusted = queue.trusted OR EXCLUDED.trusted,
               score = EXCLUDED.score, automated = coalesce(EXCLUDED.automated, queue.automated)""",
        content_id, rank.priority(), rank.urgent, rank.trusted, rank.score, reason, automated)


# --- delisting and relisting ------------------------------------------------------------

async def delist(conn: asyncpg.Connection, content_id: str, reason: str, *, facts: str, automated_detection: bool,
                 human: str | None, first_reported_at: datetime, now: datetime, cfg: ModerationConfig,
                 effects: Effects) -> ModerationDecision:
    sor = statement(content_id=content_id, action="delist", reason=reason, facts=facts,
                    automated_detection=automated_detection, human=human is not None, decided_at=now,
                    cfg=cfg)
    await conn.execute("UPDATE content SET state = 'delisted', category = $2, updated_at = now() WHERE content_id = $1",
                       content_id, reason)
    await _record(conn, sor, human, now)
    effects.emit("search.delistings", DELISTED, ContentDelisted(
        content_id=content_id, decision_id=sor.decision_id, category=reason, delisted_at=now))
    effects.emit("moderation.decisions", DECISION, sor)
    waited = max((now - first_reported_at).total_seconds(), 0.0)
    effects.after_commit.append(lambda: (metrics.DELISTINGS.labels(sor.ground, sor.automated_decision).inc(),
                                         metrics.TIME_TO_DELIST.observe(waited)))
    return sor


async def relist(conn: asyncpg.Connection, content_id: str, reason: str, *, facts: str, human: str, cause: str,
                 now: datetime, cfg: ModerationConfig, effects: Effects) -> ModerationDecision:
    sor = statement(content_id=content_id, action="relist", reason=reason, facts=facts, automated_detection=False,
                    human=True, decided_at=now, cfg=cfg)
    await conn.execute("UPDATE content SET state = 'listed', cleared_at = $2, violation_confirmed_at = NULL,"
                       " updated_at = now() WHERE content_id = $1", content_id, now)
    await _record(conn, sor, human, now)
    effects.emit("search.delistings", RELISTED, ContentRelisted(
        content_id=content_id, decision_id=sor.decision_id, relisted_at=now))
    effects.emit("moderation.decisions", DECISION, sor)
    effects.after_commit.append(lambda: metrics.RELISTINGS.labels(cause).inc())
    return sor


async def _record(conn: asyncpg.Connection, sor: ModerationDecision, human: str | None, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO decisions (decision_id, content_id, action, ground, category, automated_detection,
               automated_decision, facts, decided_by, decided_at, appealable_until)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        sor.decision_id, sor.content_id, sor.action, sor.ground, sor.category, sor.automated_detection,
        sor.automated_decision, sor.facts, human, now, sor.appealable_until)


# --- reporters' trust and misuse (DSA Art. 23) -----------------------------------------

async def settle_reports(conn: asyncpg.Connection, content_id: str, *, upheld: bool, now: datetime,
                         cfg: ModerationConfig, effects: Effects, include_upheld: bool = False) -> None:
    """A human outcome on the item's open reports: trust up when upheld; down, and misuse checked, when not."""
    outcomes = ["open", "upheld"] if include_upheld else ["open"]
    reporters = await conn.fetch(
        """UPDATE reports SET outcome = $2, outcome_at = $3
           WHERE content_id = $1 AND coalesce(outcome, 'open') = ANY($4::text[]) AND NOT suspended
           RETURNING reporter_id""", content_id, "upheld" if upheld else "unfounded", now, outcomes)
    for reporter_id in sorted({r["reporter_id"] for r in reporters}):
        trust = await conn.fetchval("SELECT trust FROM reporters WHERE reporter_id = $1 FOR UPDATE", reporter_id)
        await conn.execute("UPDATE reporters SET trust = $2, updated_at = now() WHERE reporter_id = $1",
                           reporter_id, scoring.adjust_trust(trust, upheld, cfg))
        if not upheld:
            await check_misuse(conn, reporter_id, now=now, cfg=cfg, effects=effects)


async def check_misuse(conn: asyncpg.Connection, reporter_id: str, *, now: datetime, cfg: ModerationConfig,
                       effects: Effects) -> MisuseStep:
    since = now - timedelta(days=cfg.misuse_window_days)
    counts = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE outcome = 'unfounded') AS unfounded, count(*) AS total
           FROM reports WHERE reporter_id = $1 AND outcome IS NOT NULL AND outcome_at >= $2""", reporter_id, since)
    reporter = await conn.fetchrow("SELECT warned_at, suspended_until FROM reporters WHERE reporter_id = $1",
                                   reporter_id)
    if reporter["suspended_until"] is not None and reporter["suspended_until"] > now:
        return MisuseStep.none
    warned = reporter["warned_at"] is not None and reporter["warned_at"] >= since
    step = scoring.misuse_step(counts["unfounded"], counts["total"], warned, cfg)
    until = None
    if step is MisuseStep.warn:
        await conn.execute("UPDATE reporters SET warned_at = $2 WHERE reporter_id = $1", reporter_id, now)
    elif step is MisuseStep.suspend:
        until = now + timedelta(days=cfg.misuse_suspension_days)
        await conn.execute("UPDATE reporters SET suspended_until = $2, warned_at = NULL WHERE reporter_id = $1",
                           reporter_id, until)
    if step is not MisuseStep.none:
        await conn.execute(
            "INSERT INTO misuse_actions (reporter_id, step, unfounded, total, until, at) VALUES ($1, $2, $3, $4, $5, $6)",
            reporter_id, step.value, counts["unfounded"], counts["total"], until, now)
        effects.after_commit.append(lambda: metrics.MISUSE_ACTIONS.labels(step.value).inc())
        log.info("reporter misuse", extra={"step": step.value, "unfounded": counts["unfounded"],
                                           "total": counts["total"]})
    return step


# --- moderators ------------------------------------------------------------------------

async def moderator_decision(conn: asyncpg.Connection, content_id: str, action: str, moderator: str, *,
                             category: str | None, note: str | None, now: datetime, cfg: ModerationConfig,
                             effects: Effects) -> dict:
    item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1 FOR UPDATE", content_id)
    if item is None:
        raise NotFound(content_id)
    queued = await conn.fetchrow("DELETE FROM queue WHERE content_id = $1 RETURNING reason, automated", content_id)
    reason = category or (queued["reason"] if queued else None) or item["category"] or "other"
    automated = bool(queued and queued["automated"])
    detail = f" Moderator's note: {note}" if note else ""
    sor = None
    if action == "delist":
        if item["state"] == "delisted" and item["violation_confirmed_at"] is not None:
            raise Conflict("content is already delisted and confirmed by a moderator")
        facts = (f"A moderator reviewed the reports and confirmed the content violates the rules on "
                 f"{reason.replace('_', ' ')}.{detail}")
        if item["state"] == "delisted":
            # Human confirmation of an automated delisting: a new statement, no second delisting event.
            sor = statement(content_id=content_id, action="delist", reason=reason, facts=facts,
                            automated_detection=automated, human=True, decided_at=now, cfg=cfg)
            await _record(conn, sor, moderator, now)
            effects.emit("moderation.decisions", DECISION, sor)
        else:
            sor = await delist(conn, content_id, reason, facts=facts, automated_detection=automated, human=moderator,
                               first_reported_at=item["first_reported_at"], now=now, cfg=cfg, effects=effects)
        await _confirm_violation(conn, item, reason, now, effects)
        await settle_reports(conn, content_id, upheld=True, now=now, cfg=cfg, effects=effects)
    elif action == "keep":
        if item["state"] == "delisted":
            raise Conflict("content is delisted: use restore to put it back into search")
        if queued is None:
            raise Conflict("content is not waiting for review")
        await conn.execute("UPDATE content SET cleared_at = $2, updated_at = now() WHERE content_id = $1",
                           content_id, now)
        await settle_reports(conn, content_id, upheld=False, now=now, cfg=cfg, effects=effects)
    elif action == "restore":
        if item["state"] != "delisted":
            raise Conflict("content is not delisted")
        sor = await relist(conn, content_id, reason, facts=f"A moderator found no violation and restored the "
                           f"content to search.{detail}", human=moderator, cause="moderator", now=now, cfg=cfg,
                           effects=effects)
        await settle_reports(conn, content_id, upheld=False, now=now, cfg=cfg, effects=effects)
    else:
        raise ValueError(action)
    log.info("moderator decision", extra={"content_id": content_id, "action": action})
    return {"content_id": content_id, "action": action, "decision_id": sor.decision_id if sor else None}


async def _confirm_violation(conn: asyncpg.Connection, item: asyncpg.Record, reason: str, now: datetime,
                             effects: Effects) -> None:
    await conn.execute("UPDATE content SET violation_confirmed_at = $2 WHERE content_id = $1", item["content_id"], now)
    if item["owner_account_id"]:
        effects.emit("moderation.violations", VIOLATION, ViolationConfirmed(
            account_id=item["owner_account_id"], content_id=item["content_id"], category=reason, decided_at=now))


# --- appeals ---------------------------------------------------------------------------

async def receive_appeal(conn: asyncpg.Connection, appeal: AppealSubmitted, *, now: datetime) -> str:
    """Record an appeal as open, or refused with the reason; returns the status."""
    item = await conn.fetchrow("SELECT state, owner_account_id FROM content WHERE content_id = $1", appeal.content_id)
    decision = await conn.fetchrow(
        """SELECT decision_id, appealable_until FROM decisions WHERE content_id = $1 AND action = 'delist'
           ORDER BY decided_at DESC LIMIT 1""", appeal.content_id)
    refusal = appeal_refusal(
        decision_found=decision is not None,
        owner_matches=item is not None and item["owner_account_id"] in (None, appeal.account_id),
        delisted=item is not None and item["state"] == "delisted",
        submitted_at=min(appeal.submitted_at, now),
        appealable_until=decision["appealable_until"] if decision else None)
    status = "refused" if refusal else "open"
    inserted = await conn.fetchval(
        """INSERT INTO appeals (appeal_id, content_id, account_id, decision_id, submitted_at, status, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true""",
        appeal.appeal_id, appeal.content_id, appeal.account_id, decision["decision_id"] if decision else None,
        appeal.submitted_at, status, refusal)
    return status if inserted else "duplicate"


async def decide_appeal(conn: asyncpg.Connection, appeal_id: str, outcome: str, moderator: str, *, note: str | None,
                        now: datetime, cfg: ModerationConfig, effects: Effects) -> dict:
    appeal = await conn.fetchrow("SELECT * FROM appeals WHERE appeal_id = $1 FOR UPDATE", appeal_id)
    if appeal is None:
        raise NotFound(appeal_id)
    if appeal["status"] != "open":
        raise Conflict(f"appeal is {appeal['status']}" + (f": {appeal['reason']}" if appeal["reason"] else ""))
    item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1 FOR UPDATE", appeal["content_id"])
    reason = item["category"] or "other"
    detail = f" Note: {note}" if note else ""
    sor = None
    if outcome == "overturn":
        if item["state"] != "delisted":
            raise Conflict("content is not delisted any more")
        await conn.execute("DELETE FROM queue WHERE content_id = $1", item["content_id"])
        sor = await relist(conn, item["content_id"], reason, human=moderator, cause="appeal", now=now, cfg=cfg,
                           effects=effects, facts=f"On the owner's appeal, a moderator overturned the delisting."
                                                  f"{detail}")
        await settle_reports(conn, item["content_id"], upheld=False, now=now, cfg=cfg, effects=effects,
                             include_upheld=True)
    elif outcome == "uphold":
        if item["violation_confirmed_at"] is None:
            await _confirm_violation(conn, item, reason, now, effects)
        await settle_reports(conn, item["content_id"], upheld=True, now=now, cfg=cfg, effects=effects)
    else:
        raise ValueError(outcome)
    status = "overturned" if outcome == "overturn" else "upheld"
    await conn.execute("UPDATE appeals SET status = $2, decided_by = $3, decided_at = $4 WHERE appeal_id = $1",
                       appeal_id, status, moderator, now)
    effects.after_commit.append(lambda: metrics.APPEALS.labels(status).inc())
    return {"appeal_id": appeal_id, "status": status, "decision_id": sor.decision_id if sor else None}
