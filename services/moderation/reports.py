"""Reports, set-based: record them, fold each into its item's window, act on the scores.

`score_reports` is the batch handler of `moderation.reports.submitted`
(`Subscription.handle_batch`). A report is a notice: who reported which content
id for which reason. Its title, text and owner are the reporter's claim, stored
and shown to moderators, never matched or acted on: what the content is, who owns
it and what the banks find in it come from `platform.content` (content.py). A
report about content the platform has not described yet is kept, pending, and
scored when the content arrives (content.py) or handed to humans after
`unknown_content_wait_hours` (`hand_over_unknown`).

An item's window is what Postgres holds: its reports inside the window (per
reporter, the first one recorded) and its current bank matches. Locking the
items' content rows first (creating the missing ones) holds them until the transaction ends, so a worker
scoring the same item from another partition waits, then reads a window that
holds these reports. Correctness never depends on how reports are keyed.

Statements per call, whatever its size: the content lock (and insert of the items first
reported), the read of the reporters,
the read of the platform's facts and the windows, the report insert; then, only when
some item calls for them, one per kind of write: delistings (content, decisions) and
the queue. In between, reports are folded
in order, in memory, with the pure rules of scoring.py, so one call with n reports
leaves what n calls with one report leave.

Reporters are read, not locked or written: a reporter first seen has no row and stands
at `trust_new`, which is what a row would say until something about them is decided
(handlers.reporter_row). Two workers scoring reports by the same people, new ones
included, never wait for each other.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg

from warden.contract.envelope import now as current_time
from warden.contract.events import ReportSubmitted
from warden.contract.structs import struct_of
from warden.runtime.database import rows_param
from warden.runtime.service import BatchItem, Context

from moderation import metrics, scoring
from moderation.config import ModerationConfig
from moderation.handlers import Delisting, delist_all
from moderation.scoring import Action, QueueRank, Reports, bank, is_bank

log = logging.getLogger(__name__)
# A report as the subscription hands it over (Subscription.structs): ReportSubmitted's fields, as a msgspec struct.
Report = struct_of(ReportSubmitted)


@dataclass(slots=True)
class Item:
    """A content item as this call sees it: its row, and its window (reporter or bank -> [value, epoch s])."""
    state: str
    cleared_at: datetime | None
    new: bool  # its row was created by this call: nothing refers to it yet
    known: bool  # platform.content describes it (and has not removed it): its reports are scored
    removed: bool = False  # platform.content removed it: its reports are kept, with nothing to wait for
    window: scoring.Window | None = None  # read_windows: for items the platform describes
    high_severity: list[str] = field(default_factory=list)  # categories of its high-severity bank matches


@dataclass(slots=True)
class Recorded:
    """How one report was written: new or not, and what it weighs."""
    reason: str  # the report's reason's value (an enum's `.value` is a property: read once)
    inserted: bool
    suspended: bool
    trusted: bool
    established: bool
    value: float
    reported_at: datetime


@dataclass(slots=True)
class QueueEntry:
    """An item's place in the review queue, merged as successive upserts of one row would merge it."""
    rank: QueueRank
    reason: str
    automated: str | None
    coordinated: bool = False
    source: str = "notice"

    def merge(self, later: QueueEntry) -> None:
        self.rank = QueueRank(self.rank.urgent or later.rank.urgent, self.rank.trusted or later.rank.trusted,
                              later.rank.score)
        self.automated = later.automated or self.automated
        self.coordinated = self.coordinated or later.coordinated
        self.source = later.source if later.rank.trusted else self.source


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


async def score_reports(ctx: Context, events: list[BatchItem[Report]], *, cfg: ModerationConfig) -> None:
    """Record the reports, fold each into its item's window in order, and delist or queue what the scores call for."""
    reports = [report.event for report in events]
    at = current_time()
    conn = ctx.conn
    items = await lock_items(conn, reports, at)
    reporters = await read_reporters(conn, reports, cfg)
    await read_windows(conn, items, at, cfg)
    recorded = [record_of(report, reporters[report.reporter_id], at, cfg) for report in reports]
    await insert_reports(conn, reports, recorded, items, at)
    outcome = Outcome()
    for report, x in zip(reports, recorded):
        fold_report(report, x, items[report.content.id], outcome, cfg=cfg, at=at)
    await delist_all(conn, outcome.delistings, human=None, now=at, cfg=cfg, effects=ctx)
    await enqueue_all(conn, outcome)
    counted = outcome.counted

    def count() -> None:
        for (reason, result), n in counted.items():
            metrics.REPORTS.labels(reason, result).inc(n)
    ctx.on_commit(count)


async def lock_items(conn: asyncpg.Connection, reports: list[Report], at: datetime) -> dict[str, Item]:
    """Lock the reports' content rows, creating the missing ones, in id order (locks in one order); return them."""
    kinds: dict[str, str] = {}
    for report in reports:  # kind of the first report (the platform's, once it describes the content)
        kinds.setdefault(report.content.id, report.content.kind)
    content_ids = sorted(kinds)
    # The rows there are locked as they are (a row lock, no new row version), then the missing ones inserted;
    # one another worker inserted in between is locked by the upsert. xmax = 0 only on a row it inserted.
    rows = await conn.fetch(
        """SELECT content_id, state, cleared_at, false AS new FROM content
           WHERE content_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))
           ORDER BY content_id FOR UPDATE""", rows_param(content_ids))
    if len(rows) < len(content_ids):
        there = {r["content_id"] for r in rows}
        missing = [c for c in content_ids if c not in there]
        rows += await conn.fetch(
            """INSERT INTO content (content_id, kind, first_reported_at)
               SELECT r->>0, r->>1, $2 FROM jsonb_array_elements($1::jsonb) AS r
               ON CONFLICT (content_id) DO UPDATE SET updated_at = now()
               RETURNING content_id, state, cleared_at, xmax = 0 AS new""",
            rows_param([(c, kinds[c]) for c in missing]), at)
    return {r["content_id"]: Item(r["state"], r["cleared_at"], r["new"], known=False)
            for r in rows}


@dataclass(slots=True)  # never changed; one per reporter of a call, so not frozen (three times slower to build)
class Reporter:
    trust: float
    suspended_until: datetime | None


async def read_reporters(conn: asyncpg.Connection, reports: list[Report],
                         cfg: ModerationConfig) -> dict[str, Reporter]:
    """Each reporter's standing as committed, unlocked: a reporter's row is changed only by human outcomes and
    misuse steps, each of which locks the items it decides first. A reporter with no row stands at `trust_new`."""
    reporter_ids = sorted({r.reporter_id for r in reports})
    rows = await conn.fetch("SELECT reporter_id, trust, suspended_until FROM reporters"
                            " WHERE reporter_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
                            rows_param(reporter_ids))
    known = {r["reporter_id"]: Reporter(r["trust"], r["suspended_until"]) for r in rows}
    first_seen = Reporter(cfg.trust_new, None)  # the same standing for each of them
    return {reporter_id: known.get(reporter_id) or first_seen for reporter_id in reporter_ids}


async def inserted_plainly(conn: asyncpg.Connection, insert: str, *args) -> bool:
    """Run `insert` in a savepoint: whether it went in; if a row was there already, nothing did (rolled back).

    A plain insert costs Postgres less than one with ON CONFLICT; the caller inserts again with ON CONFLICT only
    when this says a row was there (rare: a redelivery, or another worker's insert since this call read)."""
    try:
        async with conn.transaction():
            await conn.execute(insert, *args)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def read_windows(conn: asyncpg.Connection, items: dict[str, Item], at: datetime, cfg: ModerationConfig) -> None:
    """Each item's platform facts (described, removed, its high-severity matches) and its window as Postgres holds
    it: per reporter the first report recorded inside it, and the bank matches on the content's current facts
    (they count as long as the facts do, from the window's start).

    Read after the items' rows are locked, in a statement of its own: content the platform described while this
    call waited for the lock is seen as described. Items created by this call have none of it (their rows did
    not exist, and the platform's handler creates them), items the platform has not described have no window
    (their reports wait), and no bank matches either (banks match the platform's facts), so the high-severity
    matches come with the window's bank rows. The others are read item by item through the (content_id, …)
    indexes. Moments come as
    epoch seconds, as the window keeps them: asyncpg builds a timestamptz's datetime at ~1.2 µs a value."""
    earliest = scoring.window_start(at, None, cfg)  # most items were never cleared: their start, computed once
    starts = {content_id: scoring.window_start(at, item.cleared_at, cfg) if item.cleared_at else earliest
              for content_id, item in items.items() if not item.new}
    if not starts:
        return
    rows = await conn.fetch(
        """SELECT i.content_id, p.content_id IS NOT NULL AND p.removed_at IS NULL AS known,
                  p.removed_at IS NOT NULL AS removed, w.who, w.bank_id, w.contribution, w.at, w.established,
                  w.high_severity_category
           FROM (SELECT r->>0 AS content_id, (r->>1)::timestamptz AS start
                 FROM jsonb_array_elements($1::jsonb) AS r) AS i
           LEFT JOIN platform_content p ON p.content_id = i.content_id
           LEFT JOIN LATERAL (
               SELECT * FROM (SELECT DISTINCT ON (r.reporter_id) r.reporter_id AS who, NULL AS bank_id,
                                     r.contribution, extract(epoch FROM r.reported_at)::float8 AS at, r.established,
                                     NULL AS high_severity_category
                              FROM reports r
                              WHERE r.content_id = i.content_id AND r.reported_at >= i.start AND NOT r.suspended
                              ORDER BY r.reporter_id, r.seq) AS firsts
               UNION ALL
               SELECT NULL, b.bank_id, b.contribution, extract(epoch FROM greatest(b.matched_at, i.start))::float8,
                      true, CASE WHEN b.high_severity THEN b.category END
               FROM bank_matches b
               WHERE b.content_id = i.content_id) AS w ON p.content_id IS NOT NULL AND p.removed_at IS NULL""",
        rows_param(list(starts.items())))
    windows: dict[str, Reports] = {}
    high_severity: dict[str, list[tuple[str, str]]] = {}  # content id -> (bank id, category) of high-severity matches
    for r in rows:
        content_id = r["content_id"]
        item = items[content_id]
        item.known, item.removed = r["known"], r["removed"]
        window = windows.setdefault(content_id, {})
        bank_id = r["bank_id"]
        if bank_id is not None:
            window[bank(bank_id)] = [r["contribution"], r["at"], 1.0]
            if r["high_severity_category"] is not None:
                high_severity.setdefault(content_id, []).append((bank_id, r["high_severity_category"]))
        elif r["who"] is not None:
            window[r["who"]] = [r["contribution"], r["at"], 1.0 if r["established"] else 0.0]
    for content_id, matches in high_severity.items():  # in bank id order
        items[content_id].high_severity = [category for _, category in sorted(matches)]
    for content_id, window in windows.items():
        item = items[content_id]
        item.window = scoring.Window(window, starts[content_id], cfg)


def record_of(report: Report, reporter: Reporter, at: datetime, cfg: ModerationConfig) -> Recorded:
    suspended = reporter.suspended_until is not None and reporter.suspended_until > at
    trusted = report.reporter_id in cfg.trusted_flaggers
    weight = scoring.reporter_weight(reporter.trust, trusted, cfg)
    reason = report.reason.value
    value = 0.0 if suspended else scoring.contribution(reason, weight, cfg)
    established = scoring.is_established(reporter.trust, trusted, cfg)
    # In UTC's own tzinfo (a report may come in any offset, or in pydantic's TzInfo when the contract's model read
    # it): comparing or taking the timestamp of a datetime with pydantic's costs four times as much.
    reported_at = report.reported_at.astimezone(timezone.utc)
    return Recorded(reason, False, suspended, trusted, established, value, min(reported_at, at))


_INSERT_REPORTS = """
INSERT INTO reports (report_id, reporter_id, content_id, reason, surface, reported_at, contribution, trusted, suspended,
                     established, pending_since, claimed_kind, claimed_title, claimed_text, claimed_owner, comment)
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::timestamptz, (r->>6)::float8, (r->>7)::bool, (r->>8)::bool,
       (r->>9)::bool, (r->>10)::timestamptz, r->>11, r->>12, r->>13, r->>14, r->>15
FROM jsonb_array_elements($1::jsonb) AS r"""


async def insert_reports(conn: asyncpg.Connection, reports: list[Report], recorded: list[Recorded],
                         items: dict[str, Item], at: datetime) -> None:
    """Insert the reports in order, the reporter's claim beside them; reports of content the platform has not
    described (and has not removed) are pending. Marks which were new (a report already there, or twice here, is not).
    Their content rows are `items`, locked or created by this transaction (lock_items): no foreign key checks it
    again (migration 010)."""
    rows = [(r.report_id, r.reporter_id, r.content.id, x.reason, r.surface, x.reported_at, x.value, x.trusted,
             x.suspended, x.established,
             None if items[r.content.id].known or items[r.content.id].removed or x.suspended else at,
             r.content.kind, r.content.title, r.content.text, r.content.owner_account_id, r.comment)
            for r, x in zip(reports, recorded)]
    param = rows_param(rows)
    if await inserted_plainly(conn, _INSERT_REPORTS, param):  # none recorded before (redelivered, or twice here)
        for x in recorded:
            x.inserted = True
        return
    new = {(r["reporter_id"], r["report_id"]) for r in await conn.fetch(
        _INSERT_REPORTS + " ON CONFLICT DO NOTHING RETURNING reporter_id, report_id", param)}
    for report, x in zip(reports, recorded):
        key = (report.reporter_id, report.report_id)
        x.inserted = key in new
        new.discard(key)


def fold_report(report: Report, x: Recorded, item: Item, outcome: Outcome, *, cfg: ModerationConfig,
                at: datetime) -> None:
    """Fold one recorded report into its item's window and note what the window calls for."""
    reason = x.reason
    if not x.inserted or x.suspended:
        outcome.counted[reason, "suspended_reporter" if x.suspended else "duplicate"] += 1
        return
    if not item.known:
        outcome.counted[reason, "removed_content" if item.removed else "pending"] += 1
        return
    there = item.window.add(report.reporter_id, x.value, x.reported_at, x.established)
    outcome.counted[reason, "duplicate" if there else "counted"] += 1
    judge_item(report.content.id, item, outcome, cfg=cfg, at=at, trusted=x.trusted, reason=reason)


def judge_item(content_id: str, item: Item, outcome: Outcome, *, cfg: ModerationConfig, at: datetime,
               trusted: bool, reason: str, source: str = "notice", model: tuple[str, str] | None = None) -> None:
    """Delist or queue the item as its window calls for (scoring.judge); nothing for an item already delisted.
    `model`: (facts, reason) when the classifier scored the content's facts at or above its delist threshold
    (content.py, never per report): the item is delisted on that score if the window does not delist it."""
    if item.state == "delisted":
        return
    window = item.window
    if model is None and not trusted and not item.high_severity and window.quiet():
        return  # below the review threshold, no match, no burst, no trusted flagger: the report is recorded
    verdict = window.verdict(bool(item.high_severity))
    banks = window.banks
    category = item.high_severity[0] if item.high_severity else reason
    automated = ", ".join(banks) or None
    source = "trusted_flagger" if trusted else source
    if verdict.action is Action.delist or model is not None:
        reporters = tuple(sorted(who for who in window.entries if not is_bank(who)))
        if item.high_severity:
            facts = (f"The content, as the platform describes it, matched the bank of known "
                     f"{category.replace('_', ' ')} material ({automated}).")
        elif verdict.action is not Action.delist:
            facts, category = model
        else:
            counted = len(reporters)
            facts = (f"Reports from {counted} distinct reporters, with established trust behind "
                     f"{verdict.established:g} of it, reached a score of {verdict.score:g} in {cfg.window_hours:g} h "
                     f"(delisting threshold {cfg.delist_threshold:g}).")
        outcome.delistings.append(Delisting(content_id, category, facts, bool(banks) or model is not None, source,
                                            reporters))
        item.state = "delisted"
        outcome.enqueue(content_id, QueueEntry(QueueRank(bool(item.high_severity), trusted, verdict.score), category,
                                               automated, verdict.coordinated, source))
        log.info("content delisted", extra={"content_id": content_id, "score": verdict.score})
    elif verdict.action is Action.review or trusted or banks:
        outcome.enqueue(content_id, QueueEntry(QueueRank(bool(item.high_severity), trusted, verdict.score), category,
                                               automated, verdict.coordinated, source))


async def enqueue_all(conn: asyncpg.Connection, outcome: Outcome) -> None:
    """Queue or re-rank the items (one statement): priority only rises, urgency and trust stick."""
    if not outcome.queue:
        return
    rows = [(c, outcome.priority[c], e.rank.urgent, e.rank.trusted, e.rank.score, e.reason, e.automated,
             e.coordinated, e.source) for c, e in sorted(outcome.queue.items())]
    await conn.execute(
        """INSERT INTO queue (content_id, priority, urgent, trusted, score, reason, automated, coordinated, source)
           SELECT r->>0, (r->>1)::float8, (r->>2)::bool, (r->>3)::bool, (r->>4)::float8, r->>5, r->>6,
                  (r->>7)::bool, r->>8
           FROM jsonb_array_elements($1::jsonb) AS r
           ON CONFLICT (content_id) DO UPDATE SET priority = greatest(queue.priority, EXCLUDED.priority),
               urgent = queue.urgent OR EXCLUDED.urgent, trusted = queue.trusted OR EXCLUDED.trusted,
               score = EXCLUDED.score, automated = coalesce(EXCLUDED.automated, queue.automated),
               coordinated = queue.coordinated OR EXCLUDED.coordinated,
               source = CASE WHEN EXCLUDED.trusted THEN EXCLUDED.source ELSE queue.source END""",
        rows_param(rows))
