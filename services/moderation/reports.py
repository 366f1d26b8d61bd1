"""Reports, set-based: record them, fold each into its item's window, act on the scores.

`score_reports` is the batch handler of `moderation.reports.submitted`
(`Subscription.handle_batch`). An item's window is what Postgres holds: its
reports inside the window (per reporter, the first one recorded) and its current
bank matches. Upserting the items' content rows first locks them until the
transaction ends, so a worker scoring the same item from another partition (a
report keyed by another partitioner) waits, then reads a window that holds these
reports. Correctness never depends on how reports are keyed.

Statements per call, whatever its size: the content upsert, the reporter upsert,
the window read, the report insert; then, only when some item calls for them,
one per kind of write: delistings (content, decisions), the queue, bank matches.
In between, reports are folded in order, in memory, with the pure rules of
scoring.py, so one call with n reports leaves what n calls with one report leave.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from warden.contract.envelope import now as current_time
from warden.contract.events import ReportSubmitted
from warden.runtime.service import Context

from moderation import metrics, scoring
from moderation.banks import Scorer
from moderation.config import ModerationConfig
from moderation.handlers import Delisting, delist_all
from moderation.scoring import Action, QueueRank, Reports

log = logging.getLogger(__name__)
BANK = "bank:"  # a bank match sits in the window like one more reporter, under this prefix


@dataclass
class Item:
    """A content item as this call sees it: its row, and its window (reporter or bank -> [value, epoch s])."""
    state: str
    cleared_at: datetime | None
    first_reported_at: datetime
    new: bool  # its row was created by this call: nothing refers to it yet
    window: Reports = field(default_factory=dict)
    banks_read: Reports = field(default_factory=dict)


@dataclass
class Recorded:
    """How one report was written: new or not, and what it weighs."""
    inserted: bool
    suspended: bool
    trusted: bool
    value: float
    reported_at: datetime


@dataclass
class QueueEntry:
    """An item's place in the review queue, merged as successive upserts of one row would merge it."""
    rank: QueueRank
    reason: str
    automated: str | None

    def merge(self, later: QueueEntry) -> None:
        self.rank = QueueRank(self.rank.urgent or later.rank.urgent, self.rank.trusted or later.rank.trusted,
                              later.rank.score)
        self.automated = later.automated or self.automated


@dataclass
class Outcome:
    """What folding the call's reports decided, written set-based afterwards."""
    delistings: list[Delisting] = field(default_factory=list)
    queue: dict[str, QueueEntry] = field(default_factory=dict)
    priority: dict[str, float] = field(default_factory=dict)
    counted: Counter = field(default_factory=Counter)  # (reason, outcome) -> reports

    def enqueue(self, content_id: str, entry: QueueEntry) -> None:
        self.priority[content_id] = max(self.priority.get(content_id, 0.0), entry.rank.priority())
        if content_id in self.queue:
            self.queue[content_id].merge(entry)
        else:
            self.queue[content_id] = entry


async def score_reports(ctx: Context, reports: list[ReportSubmitted], *, scorer: Scorer,
                        cfg: ModerationConfig) -> None:
    """Record the reports, fold each into its item's window in order, and delist or queue what the scores call for."""
    at = current_time()
    conn = ctx.conn
    items = await lock_items(conn, reports, at)
    reporters = await upsert_reporters(conn, reports, cfg)
    await read_windows(conn, items, at, cfg)
    recorded = [record_of(report, reporters[report.reporter_id], at, cfg) for report in reports]
    await insert_reports(conn, reports, recorded)
    outcome = Outcome()
    for report, x in zip(reports, recorded):
        fold_report(report, x, items[report.content.id], outcome, scorer=scorer, cfg=cfg, at=at)
    await delist_all(conn, outcome.delistings, human=None, now=at, cfg=cfg, effects=ctx)
    await enqueue_all(conn, outcome)
    await save_bank_matches(conn, items)
    counted = outcome.counted

    def count() -> None:
        for (reason, result), n in counted.items():
            metrics.REPORTS.labels(reason, result).inc(n)
    ctx.on_commit(count)


async def lock_items(conn: asyncpg.Connection, reports: list[ReportSubmitted], at: datetime) -> dict[str, Item]:
    """Upsert the reports' content rows, in id order (locks in one order), and return them."""
    kinds: dict[str, str] = {}
    owners: dict[str, str | None] = {}
    for report in reports:  # kind of the first report; owner of the last naming one (as upserts in order leave)
        kinds.setdefault(report.content.id, report.content.kind)
        if report.content.owner_account_id is not None:
            owners[report.content.id] = report.content.owner_account_id
        owners.setdefault(report.content.id, None)
    content_ids = sorted(kinds)
    # xmax = 0 only on a row this statement inserted (an updated row carries the lock it took).
    rows = await conn.fetch(
        """INSERT INTO content (content_id, kind, owner_account_id, first_reported_at)
           SELECT u.content_id, u.kind, u.owner, $4 FROM unnest($1::text[], $2::text[], $3::text[])
               AS u(content_id, kind, owner)
           ON CONFLICT (content_id) DO UPDATE SET owner_account_id = coalesce(EXCLUDED.owner_account_id,
               content.owner_account_id), updated_at = now()
           RETURNING content_id, state, cleared_at, first_reported_at, xmax = 0 AS new""",
        content_ids, [kinds[c] for c in content_ids], [owners[c] for c in content_ids], at)
    return {r["content_id"]: Item(r["state"], r["cleared_at"], r["first_reported_at"], r["new"]) for r in rows}


async def upsert_reporters(conn: asyncpg.Connection, reports: list[ReportSubmitted],
                           cfg: ModerationConfig) -> dict[str, asyncpg.Record]:
    reporter_ids = sorted({r.reporter_id for r in reports})
    rows = await conn.fetch(
        """INSERT INTO reporters (reporter_id, trust) SELECT unnest($1::text[]), $2
           ON CONFLICT (reporter_id) DO UPDATE SET reporter_id = EXCLUDED.reporter_id
           RETURNING reporter_id, trust, suspended_until""", reporter_ids, cfg.trust_neutral)
    return {r["reporter_id"]: r for r in rows}


async def read_windows(conn: asyncpg.Connection, items: dict[str, Item], at: datetime, cfg: ModerationConfig) -> None:
    """Each item's window as Postgres holds it: per reporter the first report recorded inside it, and bank matches.

    Items created by this call have neither (both refer to the content row). The others are read
    item by item through the (content_id, …) indexes, whatever the tables' size."""
    known = [(content_id, scoring.window_start(at, item.cleared_at, cfg))
             for content_id, item in items.items() if not item.new]
    if not known:
        return
    rows = await conn.fetch(
        """SELECT i.content_id, w.who, w.contribution, w.at
           FROM unnest($1::text[], $2::timestamptz[]) AS i(content_id, start), LATERAL (
               SELECT * FROM (SELECT DISTINCT ON (r.reporter_id) r.reporter_id AS who, r.contribution,
                                     r.reported_at AS at
                              FROM reports r
                              WHERE r.content_id = i.content_id AND r.reported_at >= i.start AND NOT r.suspended
                              ORDER BY r.reporter_id, r.seq) AS firsts
               UNION ALL
               SELECT $3 || b.bank_id, b.contribution, b.matched_at FROM bank_matches b
               WHERE b.content_id = i.content_id AND b.matched_at >= i.start) AS w""",
        [c for c, _ in known], [start for _, start in known], BANK)
    for r in rows:
        item = items[r["content_id"]]
        entry = [r["contribution"], r["at"].timestamp()]
        item.window[r["who"]] = entry
        if r["who"].startswith(BANK):
            item.banks_read[r["who"]] = list(entry)


def record_of(report: ReportSubmitted, reporter: asyncpg.Record, at: datetime, cfg: ModerationConfig) -> Recorded:
    suspended = reporter["suspended_until"] is not None and reporter["suspended_until"] > at
    trusted = report.reporter_id in cfg.trusted_flaggers
    weight = scoring.reporter_weight(reporter["trust"], trusted, cfg)
    value = 0.0 if suspended else scoring.contribution(report.reason.value, weight, cfg)
    return Recorded(False, suspended, trusted, value, min(report.reported_at, at))


async def insert_reports(conn: asyncpg.Connection, reports: list[ReportSubmitted], recorded: list[Recorded]) -> None:
    """Insert the reports in order; marks which were new (a report already there, or twice here, is not)."""
    new = {(r["reporter_id"], r["report_id"]) for r in await conn.fetch(
        """INSERT INTO reports (report_id, reporter_id, content_id, reason, surface, reported_at, contribution,
                                trusted, suspended)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                $7::float8[], $8::bool[], $9::bool[])
           ON CONFLICT DO NOTHING RETURNING reporter_id, report_id""",
        [r.report_id for r in reports], [r.reporter_id for r in reports], [r.content.id for r in reports],
        [r.reason.value for r in reports], [r.surface for r in reports], [x.reported_at for x in recorded],
        [x.value for x in recorded], [x.trusted for x in recorded], [x.suspended for x in recorded])}
    for report, x in zip(reports, recorded):
        key = (report.reporter_id, report.report_id)
        x.inserted = key in new
        new.discard(key)


def fold_report(report: ReportSubmitted, x: Recorded, item: Item, outcome: Outcome, *, scorer: Scorer,
                cfg: ModerationConfig, at: datetime) -> None:
    """Fold one recorded report into its item's window and note what its score calls for."""
    content, reason = report.content, report.reason.value
    if not x.inserted or x.suspended:
        outcome.counted[reason, "suspended_reporter" if x.suspended else "duplicate"] += 1
        return
    start = scoring.window_start(at, item.cleared_at, cfg)
    before = item.window
    item.window = scoring.add_report(before, report.reporter_id, x.value, x.reported_at, start)
    outcome.counted[reason, "duplicate" if report.reporter_id in before else "counted"] += 1
    detections = scorer.detect(content)
    for found in detections:  # an automated match counts like one more reporter
        item.window = scoring.add_report(item.window, BANK + found.bank_id,
                                         scoring.contribution(found.category, found.weight, cfg), at, start)
    score = scoring.window_score(item.window, start)
    high = [d for d in detections if d.high_severity]
    action = scoring.decide(score, bool(high), cfg)
    category = high[0].category if high else reason
    automated = ", ".join(f"{d.bank_id} ({d.how})" for d in detections) or None
    if item.state == "delisted":
        return
    if action is Action.delist:
        if high:
            facts = f"Content matched the bank of known {category.replace('_', ' ')} material ({automated})."
        else:
            reporters = sum(1 for r in item.window if not r.startswith(BANK))
            facts = (f"Reports from {reporters} distinct reporters reached a score of {score:g} in "
                     f"{cfg.window_hours:g} h (delisting threshold {cfg.delist_threshold:g}).")
        outcome.delistings.append(Delisting(content.id, category, facts, bool(detections), item.first_reported_at))
        item.state = "delisted"
        outcome.enqueue(content.id, QueueEntry(QueueRank(True, x.trusted, score), category, automated))
        log.info("content delisted", extra={"content_id": content.id, "score": score})
    elif action is Action.review or x.trusted:
        outcome.enqueue(content.id, QueueEntry(QueueRank(False, x.trusted, score), category, automated))


async def enqueue_all(conn: asyncpg.Connection, outcome: Outcome) -> None:
    """Queue or re-rank the items (one statement): priority only rises, urgency and trust stick."""
    if not outcome.queue:
        return
    ids = sorted(outcome.queue)
    entries = [outcome.queue[c] for c in ids]
    await conn.execute(
        """INSERT INTO queue (content_id, priority, urgent, trusted, score, reason, automated)
           SELECT * FROM unnest($1::text[], $2::float8[], $3::bool[], $4::bool[], $5::float8[], $6::text[],
                                $7::text[])
           ON CONFLICT (content_id) DO UPDATE SET priority = greatest(queue.priority, EXCLUDED.priority),
               urgent = queue.urgent OR EXCLUDED.urgent, trusted = queue.trusted OR EXCLUDED.trusted,
               score = EXCLUDED.score, automated = coalesce(EXCLUDED.automated, queue.automated)""",
        ids, [outcome.priority[c] for c in ids], [e.rank.urgent for e in entries], [e.rank.trusted for e in entries],
        [e.rank.score for e in entries], [e.reason for e in entries], [e.automated for e in entries])


async def save_bank_matches(conn: asyncpg.Connection, items: dict[str, Item]) -> None:
    """The bank matches each window holds now, where they changed."""
    changed = [(content_id, who[len(BANK):], entry) for content_id, item in items.items()
               for who, entry in item.window.items() if who.startswith(BANK) and item.banks_read.get(who) != entry]
    if not changed:
        return
    await conn.execute(
        """INSERT INTO bank_matches (content_id, bank_id, contribution, matched_at)
           SELECT u.content_id, u.bank_id, u.contribution, to_timestamp(u.at)
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS u(content_id, bank_id, contribution, at)
           ON CONFLICT (content_id, bank_id) DO UPDATE SET contribution = EXCLUDED.contribution,
               matched_at = EXCLUDED.matched_at""",
        [c for c, _, _ in changed], [b for _, b, _ in changed], [e[0] for _, _, e in changed],
        [e[1] for _, _, e in changed])
