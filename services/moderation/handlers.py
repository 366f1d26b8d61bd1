"""Moderation's decisions and appeals, each inside the caller's Postgres transaction.

Every function here changes state through `conn` and emits its events through
`effects` (the consumer's `Context`, or `Effects` for the HTTP API and console),
so a decision and its events commit together. Reports are scored in reports.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from warden.contract.envelope import now as current_time, random_id
from warden.contract.events import (AppealSubmitted, ContentDelisted, ContentRelisted, ModerationDecision,
                                    ModerationNotice, Payload, ViolationConfirmed, ViolationWithdrawn)
from warden.runtime.outbox import OutboxRow, event_row
from warden.runtime.service import Context

from moderation import metrics, scoring
from moderation.config import ModerationConfig
from moderation.scoring import MisuseStep
from moderation.statements import Facts, appeal_refusal, statement

log = logging.getLogger(__name__)
SERVICE = "moderation"


class Conflict(Exception):
    """A moderator's decision that the content's current state does not allow (HTTP 409)."""


class NotFound(Exception):
    pass


class Emitter(Protocol):
    """Where a decision's events and after-commit metrics go: a consumer `Context` or `Effects`."""

    def emit(self, event: Payload) -> None: ...

    def on_commit(self, hook: Callable[[], None]) -> None: ...


@dataclass
class Effects:
    """An HTTP request's events and metrics (moderation.transactions writes and counts them on commit)."""
    rows: list[OutboxRow] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def emit(self, event: Payload) -> None:
        self.rows.append(event_row(SERVICE, event))

    def on_commit(self, hook: Callable[[], None]) -> None:
        self.after_commit.append(hook)


# --- delisting and relisting ------------------------------------------------------------

@dataclass(frozen=True)
class Delisting:
    """One item to take out of search, and why (the facts of its statement of reasons)."""
    content_id: str
    reason: str
    facts: str
    automated_detection: bool
    source: str = "notice"  # notice | trusted_flagger | proactive | unknown_content
    reporters: tuple[str, ...] = ()  # whose notices counted towards an automated delisting: each is told


def notice(account_id: str, kind: str, text: str, now: datetime, *, content_id: str | None = None,
           decision_id: str | None = None) -> ModerationNotice:
    return ModerationNotice(notice_id=random_id(), account_id=account_id, kind=kind, text=text, at=now,
                            content_id=content_id, decision_id=decision_id)


async def facts_of(conn: asyncpg.Connection, content_ids: list[str]) -> dict[str, Facts]:
    """What platform.content says of each item, as its statement of reasons needs it."""
    rows = await conn.fetch(
        """SELECT content_id, created_at, jsonb_array_length(media) > 0 AS has_media FROM platform_content
           WHERE content_id = ANY($1::text[])""", content_ids)
    return {r["content_id"]: Facts(r["created_at"], r["has_media"], True) for r in rows}


async def delist_all(conn: asyncpg.Connection, delistings: list[Delisting], *, human: str | None, now: datetime,
                     cfg: ModerationConfig, effects: Emitter) -> list[ModerationDecision]:
    """Delist the items (two statements however many), with a statement of reasons and events for each."""
    if not delistings:
        return []
    rows = await conn.fetch(
        """UPDATE content SET state = 'delisted', category = u.category, updated_at = now()
           FROM unnest($1::text[], $2::text[]) AS u(content_id, category)
               LEFT JOIN platform_content p ON p.content_id = u.content_id
           WHERE content.content_id = ANY($1::text[]) AND content.content_id = u.content_id
           RETURNING content.content_id, content.first_reported_at, p.created_at,
               jsonb_array_length(p.media) > 0 AS has_media, p.content_id IS NOT NULL AS described""",
        [d.content_id for d in delistings], [d.reason for d in delistings])
    facts = {r["content_id"]: Facts(r["created_at"], bool(r["has_media"]), r["described"]) for r in rows}
    sors = [statement(content_id=d.content_id, action="delist", reason=d.reason, facts=d.facts,
                      automated_detection=d.automated_detection, human=human is not None, decided_at=now, cfg=cfg,
                      source=d.source, content=facts.get(d.content_id, Facts()))
            for d in delistings]
    await _record(conn, sors, human, now)
    for d, sor in zip(delistings, sors):
        effects.emit(ContentDelisted(
            content_id=d.content_id, decision_id=sor.decision_id, category=d.reason, delisted_at=now))
        effects.emit(sor)
        for reporter_id in d.reporters:  # DSA Art. 16(5): told at once, and again when a human confirms or reverses
            effects.emit(notice(reporter_id, "notice_outcome", (
                "Your notice about this content led to its removal from public search, decided automatically; a "
                "moderator will review the decision."), now, content_id=d.content_id, decision_id=sor.decision_id))
    first_reported = {r["content_id"]: r["first_reported_at"] for r in rows}
    waited = [max((now - first_reported.get(d.content_id, now)).total_seconds(), 0.0) for d in delistings]

    def count() -> None:
        for sor, seconds in zip(sors, waited):
            metrics.DELISTINGS.labels(sor.ground, sor.automated_decision).inc()
            metrics.TIME_TO_DELIST.observe(seconds)
    effects.on_commit(count)
    return sors


async def delist(conn: asyncpg.Connection, content_id: str, reason: str, *, facts: str, automated_detection: bool,
                 human: str | None, now: datetime, cfg: ModerationConfig, effects: Emitter,
                 source: str = "notice") -> ModerationDecision:
    [sor] = await delist_all(conn, [Delisting(content_id, reason, facts, automated_detection, source)],
                             human=human, now=now, cfg=cfg, effects=effects)
    return sor


async def relist(conn: asyncpg.Connection, content_id: str, reason: str, *, facts: str, human: str, cause: str,
                 now: datetime, cfg: ModerationConfig, effects: Emitter, source: str = "notice") -> ModerationDecision:
    """Back into search; a violation confirmed on the delisting is withdrawn (legal review drops it)."""
    content = (await facts_of(conn, [content_id])).get(content_id, Facts())
    sor = statement(content_id=content_id, action="relist", reason=reason, facts=facts, automated_detection=False,
                    human=True, decided_at=now, cfg=cfg, source=source, content=content)
    withdrawn = await conn.fetchrow(
        """UPDATE content c SET state = 'listed', cleared_at = $2, violation_confirmed_at = NULL,
               violation_account_id = NULL, violation_decision_id = NULL, updated_at = now()
           FROM (SELECT violation_account_id, violation_decision_id FROM content WHERE content_id = $1) AS old
           WHERE c.content_id = $1 RETURNING old.violation_account_id AS account_id,
               old.violation_decision_id AS decision_id""", content_id, now)
    if withdrawn and withdrawn["account_id"]:
        effects.emit(ViolationWithdrawn(account_id=withdrawn["account_id"], content_id=content_id,
                                        decision_id=str(withdrawn["decision_id"]), withdrawn_at=now))
    await _record(conn, [sor], human, now)
    effects.emit(ContentRelisted(
        content_id=content_id, decision_id=sor.decision_id, relisted_at=now))
    effects.emit(sor)
    effects.on_commit(lambda: metrics.RELISTINGS.labels(cause).inc())
    return sor


async def _record(conn: asyncpg.Connection, sors: list[ModerationDecision], human: str | None,
                  now: datetime) -> None:
    await conn.execute(
        """INSERT INTO decisions (decision_id, content_id, action, ground, category, automated_detection,
               automated_decision, facts, decided_by, decided_at, appealable_until, decision_visibility,
               ground_explanation, content_type, source_type, content_date, territorial_scope)
           SELECT u.decision_id, u.content_id, u.action, u.ground, u.category, u.automated_detection,
                  u.automated_decision, u.facts, $9, $10, u.appealable_until, string_to_array(u.visibility, ','),
                  u.explanation, string_to_array(u.content_type, ','), u.source_type, u.content_date,
                  string_to_array(u.scope, ',')
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
               $5::text[], $6::bool[], $7::text[], $8::text[], $11::timestamptz[], $12::text[], $13::text[],
               $14::text[], $15::text[], $16::date[], $17::text[])
               AS u(decision_id, content_id, action, ground, category, automated_detection, automated_decision,
                    facts, appealable_until, visibility, explanation, content_type, source_type, content_date,
                    scope)""",
        [s.decision_id for s in sors], [s.content_id for s in sors], [s.action for s in sors],
        [s.ground for s in sors], [s.category for s in sors], [s.automated_detection for s in sors],
        [s.automated_decision for s in sors], [s.facts for s in sors], human, now,
        [s.appealable_until for s in sors], [",".join(s.decision_visibility) for s in sors],
        [s.ground_explanation for s in sors], [",".join(s.content_type) for s in sors],
        [s.source_type for s in sors], [s.content_date for s in sors],
        [",".join(s.territorial_scope) for s in sors])


# --- reporters' trust and misuse (DSA Art. 23) -----------------------------------------

async def settle_reports(conn: asyncpg.Connection, content_id: str, *, upheld: bool, now: datetime,
                         cfg: ModerationConfig, effects: Emitter, decision_id: str | None,
                         include_upheld: bool = False) -> None:
    """A human outcome on the item's open reports: each reporter told of it (DSA Art. 16(5)); trust up when
    upheld; down, and misuse checked, when not (trusted flaggers are never suspended for misuse, Art. 22/23)."""
    outcomes = ["open", "upheld"] if include_upheld else ["open"]
    reporters = await conn.fetch(
        """UPDATE reports SET outcome = $2, outcome_at = $3, pending_since = NULL
           WHERE content_id = $1 AND coalesce(outcome, 'open') = ANY($4::text[]) AND NOT suspended
           RETURNING reporter_id, trusted""", content_id, "upheld" if upheld else "unfounded", now, outcomes)
    told = ("Thank you: your notice about this content was found justified, and the content was taken out of "
            "public search." if upheld else
            "Your notice about this content was reviewed: no violation was found, and the content stays in "
            "public search. You may contest this decision through the platform's complaint system.")
    trusted = {r["reporter_id"] for r in reporters if r["trusted"]} | set(cfg.trusted_flaggers)
    for reporter_id in sorted({r["reporter_id"] for r in reporters}):
        effects.emit(notice(reporter_id, "notice_outcome", told, now, content_id=content_id, decision_id=decision_id))
        trust = await reporter_row(conn, reporter_id, cfg)
        await conn.execute("UPDATE reporters SET trust = $2, updated_at = now() WHERE reporter_id = $1",
                           reporter_id, scoring.adjust_trust(trust, upheld, cfg))
        if not upheld and reporter_id not in trusted:
            await check_misuse(conn, reporter_id, now=now, cfg=cfg, effects=effects)


async def reporter_row(conn: asyncpg.Connection, reporter_id: str, cfg: ModerationConfig) -> float:
    """Lock the reporter's row, creating it at `trust_new` if they have none yet; their trust.

    A reporter gets a row once something about them is decided: until then their standing is `trust_new`, which is
    what the row would say, so scoring reports writes none (moderation.reports)."""
    await conn.execute("INSERT INTO reporters (reporter_id, trust) VALUES ($1, $2) ON CONFLICT (reporter_id) DO NOTHING",
                       reporter_id, cfg.trust_new)
    return await conn.fetchval("SELECT trust FROM reporters WHERE reporter_id = $1 FOR UPDATE", reporter_id)


async def check_misuse(conn: asyncpg.Connection, reporter_id: str, *, now: datetime, cfg: ModerationConfig,
                       effects: Emitter) -> MisuseStep:
    """DSA Art. 23: warn (the warning delivered on moderation.notices) first; suspend only on manifestly unfounded
    reports filed after the warning. The reporter's row is locked (reporter_row)."""
    since = now - timedelta(days=cfg.misuse_window_days)
    reporter = await conn.fetchrow("SELECT warned_at, suspended_until FROM reporters WHERE reporter_id = $1",
                                   reporter_id)
    if reporter["suspended_until"] is not None and reporter["suspended_until"] > now:
        return MisuseStep.none
    warned = reporter["warned_at"] is not None and reporter["warned_at"] >= since
    counts = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE outcome = 'unfounded') AS unfounded, count(*) AS total
           FROM reports WHERE reporter_id = $1 AND outcome IS NOT NULL AND outcome_at >= $2
             AND ($3::timestamptz IS NULL OR reported_at > $3)""",
        reporter_id, since, reporter["warned_at"] if warned else None)
    step = scoring.misuse_step(counts["unfounded"], counts["total"], warned, cfg)
    until = None
    if step is MisuseStep.warn:
        await conn.execute("UPDATE reporters SET warned_at = $2 WHERE reporter_id = $1", reporter_id, now)
        effects.emit(notice(reporter_id, "misuse_warning", (
            f"Warning (DSA Art. 23): {counts['unfounded']} of your last {counts['total']} notices were manifestly "
            f"unfounded. If the notices you file from now on are too, we will stop processing your notices for "
            f"{cfg.misuse_suspension_days:g} days."), now))
    elif step is MisuseStep.suspend:
        until = now + timedelta(days=cfg.misuse_suspension_days)
        await conn.execute("UPDATE reporters SET suspended_until = $2, warned_at = NULL WHERE reporter_id = $1",
                           reporter_id, until)
        effects.emit(notice(reporter_id, "misuse_suspension", (
            f"Suspended (DSA Art. 23): after our warning, {counts['unfounded']} of your {counts['total']} notices "
            f"were manifestly unfounded. Your notices will not be processed until {until.date().isoformat()}. "
            f"You may contest this decision through the platform's complaint system."), now))
    if step is not MisuseStep.none:
        await conn.execute(
            "INSERT INTO misuse_actions (reporter_id, step, unfounded, total, until, at) VALUES ($1, $2, $3, $4, $5, $6)",
            reporter_id, step.value, counts["unfounded"], counts["total"], until, now)
        effects.on_commit(lambda: metrics.MISUSE_ACTIONS.labels(step.value).inc())
        log.info("reporter misuse", extra={"step": step.value, "unfounded": counts["unfounded"],
                                           "total": counts["total"]})
    return step


# --- moderators ------------------------------------------------------------------------

async def moderator_decision(conn: asyncpg.Connection, content_id: str, action: str, moderator: str, *,
                             category: str | None, note: str | None, now: datetime, cfg: ModerationConfig,
                             effects: Emitter) -> dict:
    item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1 FOR UPDATE", content_id)
    if item is None:
        raise NotFound(content_id)
    queued = await conn.fetchrow("DELETE FROM queue WHERE content_id = $1 RETURNING reason, automated, source",
                                 content_id)
    reason = category or (queued["reason"] if queued else None) or item["category"] or "other"
    automated = bool(queued and queued["automated"])
    source = (queued["source"] if queued else None) or "notice"
    content = (await facts_of(conn, [content_id])).get(content_id, Facts())
    detail = f" Moderator's note: {note}" if note else ""
    sor = None
    if action == "delist":
        if item["state"] == "delisted" and item["violation_confirmed_at"] is not None:
            raise Conflict("content is already delisted and confirmed by a moderator")
        facts = (f"A moderator reviewed the content and confirmed it violates the rules on "
                 f"{reason.replace('_', ' ')}.{detail}")
        if item["state"] == "delisted":
            # Human confirmation of an automated delisting: a new statement, no second delisting event.
            sor = statement(content_id=content_id, action="delist", reason=reason, facts=facts,
                            automated_detection=automated, human=True, decided_at=now, cfg=cfg, source=source,
                            content=content)
            await _record(conn, [sor], moderator, now)
            effects.emit(sor)
        else:
            sor = await delist(conn, content_id, reason, facts=facts, automated_detection=automated, human=moderator,
                               now=now, cfg=cfg, effects=effects, source=source)
        await _confirm_violation(conn, content_id, reason, sor.decision_id, now, effects)
        await settle_reports(conn, content_id, upheld=True, now=now, cfg=cfg, effects=effects,
                             decision_id=sor.decision_id)
    elif action == "keep":
        if item["state"] == "delisted":
            raise Conflict("content is delisted: use restore to put it back into search")
        if queued is None:
            raise Conflict("content is not waiting for review")
        sor = statement(content_id=content_id, action="keep", reason=reason, automated_detection=automated,
                        human=True, decided_at=now, cfg=cfg, source=source, content=content,
                        facts=f"A moderator reviewed the notices and found no violation; the content stays in "
                              f"search.{detail}")
        await _record(conn, [sor], moderator, now)
        effects.emit(sor)
        await conn.execute("UPDATE content SET cleared_at = $2, updated_at = now() WHERE content_id = $1",
                           content_id, now)
        await settle_reports(conn, content_id, upheld=False, now=now, cfg=cfg, effects=effects,
                             decision_id=sor.decision_id)
    elif action == "restore":
        if item["state"] != "delisted":
            raise Conflict("content is not delisted")
        sor = await relist(conn, content_id, reason, facts=f"A moderator found no violation and restored the "
                           f"content to search.{detail}", human=moderator, cause="moderator", now=now, cfg=cfg,
                           effects=effects, source=source)
        await settle_reports(conn, content_id, upheld=False, now=now, cfg=cfg, effects=effects,
                             decision_id=sor.decision_id)
    else:
        raise ValueError(action)
    log.info("moderator decision", extra={"content_id": content_id, "action": action})
    return {"content_id": content_id, "action": action, "decision_id": sor.decision_id if sor else None}


async def _confirm_violation(conn: asyncpg.Connection, content_id: str, reason: str, decision_id: str,
                             now: datetime, effects: Emitter) -> None:
    """A human-confirmed violation, for the owner platform.content names (none named: no one's violation)."""
    owner = await conn.fetchval("SELECT owner_account_id FROM platform_content WHERE content_id = $1", content_id)
    await conn.execute("UPDATE content SET violation_confirmed_at = $2, violation_account_id = $3,"
                       " violation_decision_id = $4 WHERE content_id = $1", content_id, now, owner, decision_id)
    if owner:
        effects.emit(ViolationConfirmed(account_id=owner, content_id=content_id, category=reason, decided_at=now))


# --- appeals ---------------------------------------------------------------------------

async def receive_appeal(ctx: Context, appeal: AppealSubmitted) -> None:
    """Handler of `moderation.appeals.submitted`: the appeal recorded as open, or refused with the reason."""
    status = await record_appeal(ctx.conn, appeal, now=current_time(), effects=ctx)
    ctx.on_commit(lambda: metrics.APPEALS.labels(status).inc())


async def record_appeal(conn: asyncpg.Connection, appeal: AppealSubmitted, *, now: datetime,
                        effects: Emitter) -> str:
    """Record an appeal as open, or refused with the reason (the appellant told, Art. 20(5)); returns the status.

    It was submitted when Warden received it (the client's time is kept beside, never relied on); the owner is
    platform.content's."""
    item = await conn.fetchrow(
        """SELECT c.state, p.owner_account_id FROM content c LEFT JOIN platform_content p USING (content_id)
           WHERE c.content_id = $1""", appeal.content_id)
    decision = await conn.fetchrow(
        """SELECT decision_id, appealable_until FROM decisions WHERE content_id = $1 AND action = 'delist'
           ORDER BY decided_at DESC LIMIT 1""", appeal.content_id)
    owner = item["owner_account_id"] if item else None
    refusal = appeal_refusal(
        decision_found=decision is not None, owner_known=owner is not None, owner_matches=owner == appeal.account_id,
        delisted=item is not None and item["state"] == "delisted", submitted_at=now,
        appealable_until=decision["appealable_until"] if decision else None)
    status = "refused" if refusal else "open"
    inserted = await conn.fetchval(
        """INSERT INTO appeals (appeal_id, content_id, account_id, decision_id, submitted_at, status, reason,
                                statement, claimed_submitted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING true""",
        appeal.appeal_id, appeal.content_id, appeal.account_id, decision["decision_id"] if decision else None,
        now, status, refusal, appeal.statement, appeal.submitted_at)
    if not inserted:
        return "duplicate"
    if refusal:
        effects.emit(notice(appeal.account_id, "appeal_outcome", f"Your complaint cannot be heard: {refusal}.", now,
                            content_id=appeal.content_id))
    return status


async def decide_appeal(conn: asyncpg.Connection, appeal_id: str, outcome: str, moderator: str, *, note: str | None,
                        now: datetime, cfg: ModerationConfig, effects: Emitter) -> dict:
    """An appeal decided by someone who took no part in the delisting (DSA Art. 20(6)); the appellant told."""
    appeal = await conn.fetchrow("SELECT * FROM appeals WHERE appeal_id = $1 FOR UPDATE", appeal_id)
    if appeal is None:
        raise NotFound(appeal_id)
    if appeal["status"] != "open":
        raise Conflict(f"appeal is {appeal['status']}" + (f": {appeal['reason']}" if appeal["reason"] else ""))
    item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1 FOR UPDATE", appeal["content_id"])
    deciders = await conn.fetchval(
        """SELECT array_agg(DISTINCT decided_by) FROM decisions WHERE content_id = $1 AND action = 'delist'
           AND decided_by IS NOT NULL AND decided_at >= coalesce($2, '-infinity'::timestamptz)""",
        item["content_id"], item["cleared_at"]) or []
    if moderator in deciders:
        raise Conflict("the appeal must be decided by someone other than the moderator who decided the delisting")
    if item["state"] != "delisted":
        raise Conflict("content is not delisted any more: nothing to uphold or overturn")
    reason = item["category"] or "other"
    detail = f" Note: {note}" if note else ""
    if outcome == "overturn":
        await conn.execute("DELETE FROM queue WHERE content_id = $1", item["content_id"])
        sor = await relist(conn, item["content_id"], reason, human=moderator, cause="appeal", now=now, cfg=cfg,
                           effects=effects, facts=f"On the owner's appeal, a moderator overturned the delisting."
                                                  f"{detail}")
        await settle_reports(conn, item["content_id"], upheld=False, now=now, cfg=cfg, effects=effects,
                             include_upheld=True, decision_id=sor.decision_id)
        told = "Your complaint was upheld: the delisting was overturned and the content is back in public search."
    elif outcome == "uphold":
        content = (await facts_of(conn, [item["content_id"]])).get(item["content_id"], Facts())
        sor = statement(content_id=item["content_id"], action="uphold", reason=reason, automated_detection=False,
                        human=True, decided_at=now, cfg=cfg, content=content,
                        facts=f"On the owner's appeal, a moderator reviewed the delisting and upheld it.{detail}")
        await _record(conn, [sor], moderator, now)
        effects.emit(sor)
        if item["violation_confirmed_at"] is None:
            await _confirm_violation(conn, item["content_id"], reason, sor.decision_id, now, effects)
        await settle_reports(conn, item["content_id"], upheld=True, now=now, cfg=cfg, effects=effects,
                             decision_id=sor.decision_id)
        told = ("Your complaint was rejected: the delisting stands. You may refer the decision to a certified "
                "out-of-court dispute settlement body (DSA Art. 21) or to a court.")
    else:
        raise ValueError(outcome)
    status = "overturned" if outcome == "overturn" else "upheld"
    await conn.execute("UPDATE appeals SET status = $2, decided_by = $3, decided_at = $4 WHERE appeal_id = $1",
                       appeal_id, status, moderator, now)
    effects.emit(notice(appeal["account_id"], "appeal_outcome", told, now, content_id=item["content_id"],
                        decision_id=sor.decision_id))
    effects.on_commit(lambda: metrics.APPEALS.labels(status).inc())
    return {"appeal_id": appeal_id, "status": status, "decision_id": sor.decision_id}
