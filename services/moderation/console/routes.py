"""The moderators' console: server-rendered pages over the decisions the moderation API takes.

GET  /console/                        the queue, severity first; filters in the query string, keyset pages
POST /console/                        the same with the search (a content or account id: never in a URL)
GET  /console/content/{content_id}    the evidence: what the platform says it is and what the automated checks
                                      find in it (classifier words, bank and media matches), reports grouped by
                                      reason with each reporter's claim, reporter trust, score history, the
                                      owner's other decisions;
                                      opening a queued item claims it (moderation.queues.claim)
POST /console/content/{content_id}    delist / keep / restore (handlers.moderator_decision, refused while someone
                                      else holds the item), escalate, claim; then on to the next item
POST /console/reveal                  show one of an item's images unblurred to this moderator (recorded)
POST /console/bulk                    keep the selected items: confirm first, then one transaction each
GET  /console/appeals                 open appeals first, then decided and refused ones
POST /console/appeals/{appeal_id}     uphold / overturn                  (handlers.decide_appeal)
GET  /console/static/moderation.js    the keyboard shortcuts (CSP script-src 'self')
GET|POST /console/signin, POST /console/signout   (warden.console)
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from warden.console import Console
from warden.contract.envelope import now
from warden.contract.events import ContentMedia, ContentUpdated, ReportReason

from moderation import handlers, queues, scoring
from moderation.config import ModerationConfig, Moderator
from moderation.content import facts_of_row
from moderation.detection import Check, Checks, MediaInBank
from moderation.transactions import Transactions

log = logging.getLogger(__name__)
PREFIX = "/console"
ACTIONS = ("delist", "keep", "restore")
SCRIPT = Path(__file__).parent / "static" / "moderation.js"
DONE = {"delist": "Delisted: the content is out of search and the statement of reasons is sent.",
        "keep": "Kept: the content stays in search; the reports are marked unfounded.",
        "restore": "Restored: the content is back in search.",
        "escalate": "Escalated: the item is marked for a senior moderator and released.",
        "claim": "Claimed: this item is yours to decide for now.",
        "uphold": "Appeal decided: the delisting is upheld.",
        "overturn": "Appeal decided: the delisting is overturned and the content relisted."}


def content_url(content_id: str) -> str:
    return f"/content/{quote(content_id, safe='')}"


def add_console(app: FastAPI, transactions: Transactions, cfg: ModerationConfig, checks: Checks) -> None:
    """Mount the moderator console on the service's app, next to the API (add_routes). `checks`: the service's
    automated checks, run again on the platform's facts when an item is shown (what matched, and why)."""
    console: Console[Moderator] = Console(
        title="Moderation", prefix=PREFIX, cookie="warden_moderation_session",
        templates=Path(__file__).parent / "templates", tokens=cfg.tokens,
        display=lambda m: f"{m.name} ({', '.join(m.roles) or 'no role'})")
    console.env.globals["content_url"] = content_url
    console.env.globals["waited"] = waited
    console.env.globals["media_link"] = cfg.media_link
    console.env.globals["sla"] = lambda queued_at, urgent, at: sla(queued_at, urgent, at, cfg)
    router = console.router()

    def with_role(request: Request, role: str):
        who, session = console.signed_in(request)
        if role not in who.roles:
            return who, session, console.refuse(request, 403, "Not allowed",
                                                f"Your token does not carry the {role!r} role.")
        return who, session, None

    @router.get("/")
    async def queue(request: Request, after: str | None = None, done: str | None = None) -> Response:
        """The queue with the filters of the query string (never a search: that is an account id, POSTed)."""
        who, session, refused = with_role(request, "moderator")
        if refused:
            return refused
        fields = {k: v for k, v in request.query_params.items() if k != "search"}
        return await _queue_page(request, session, who, queues.Filters.parse(fields), after,
                                 notice=DONE.get(done or ""))

    @router.post("/")
    async def queue_search(request: Request) -> Response:
        """The filter form, with the search, and its pages (the cursor in the form, not the URL)."""
        who, session, refused = with_role(request, "moderator")
        form = await request.form()
        console.check_csrf(session, str(form.get("csrf_token", "")))
        if refused:
            return refused
        fields = {k: str(v) for k, v in form.items()}
        return await _queue_page(request, session, who, queues.Filters.parse(fields), fields.get("after"))

    async def _queue_page(request: Request, session, who: Moderator, filters: queues.Filters, after: str | None,
                          status: int = 200, **extra) -> Response:
        at = now()
        async with transactions.pool.acquire() as conn:
            items, more = await queues.page(conn, filters, who.name, at, after)
            counts = await queues.counts(conn, filters, who.name, at)
            choices = await conn.fetchrow(
                """SELECT array(SELECT DISTINCT reason FROM queue ORDER BY 1) AS reasons,
                          array(SELECT DISTINCT p.language FROM queue q JOIN platform_content p USING (content_id)
                                WHERE p.language IS NOT NULL ORDER BY 1) AS languages,
                          array(SELECT DISTINCT r.surface FROM queue q JOIN reports r USING (content_id)
                                ORDER BY 1) AS surfaces""")
        return console.render(request, "queue.html", session, status=status, items=items, more=more,
                              counts=counts, filters=filters, choices=choices, cfg=cfg, at=at, me=who.name,
                              paged=bool(after), appeals_role="appeals" in who.roles, **extra)

    @router.post("/bulk")
    async def bulk(request: Request) -> Response:
        """Bulk keep: the first POST asks for confirmation, the second (confirm=yes) decides each item."""
        who, session, refused = with_role(request, "moderator")
        form = await request.form()
        console.check_csrf(session, str(form.get("csrf_token", "")))
        if refused:
            return refused
        ids = list(dict.fromkeys(str(v) for v in form.getlist("content_id")))[:100]
        if not ids or form.get("action") != "keep":
            return await _queue_page(request, session, who, queues.Filters(), None, status=422,
                                     error="Select at least one item to keep.")
        if form.get("confirm") != "yes":
            return console.render(request, "bulk.html", session, ids=ids, note=str(form.get("note", "")))
        note = str(form.get("note", "")).strip()[:2000] or None
        done, refused_items = [], []
        for content_id in ids:  # one transaction each: an item someone else holds does not stop the others
            try:
                await transactions.run_in_transaction(lambda conn, effects, c=content_id: decide(
                    conn, effects, c, "keep", who.name, category=None, note=note))
                done.append(content_id)
            except (handlers.NotFound, handlers.Conflict, queues.Claimed) as why:
                refused_items.append((content_id, "not in the queue" if isinstance(why, handlers.NotFound)
                                      else str(why)))
        return console.render(request, "bulk.html", session, ids=ids, done=done, refused=refused_items)

    async def decide(conn, effects, content_id: str, action: str, moderator: str, *, category, note) -> dict:
        """A moderator's decision, refused while someone else holds the item (the API decides the same way)."""
        at = now()
        await queues.check_free(conn, content_id, moderator, at)
        return await handlers.moderator_decision(conn, content_id, action, moderator, category=category, note=note,
                                                 now=at, cfg=cfg, effects=effects)

    @router.get("/static/moderation.js")
    async def script() -> Response:
        return Response(SCRIPT.read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @router.get("/appeals")
    async def appeals(request: Request, done: str | None = None) -> Response:
        who, session, refused = with_role(request, "appeals")
        if refused:
            return refused
        return await _appeals_page(request, session, notice=DONE.get(done or ""))

    @router.post("/appeals/{appeal_id}")
    async def decide_appeal(request: Request, appeal_id: str, csrf_token: str = Form(""),
                            outcome: str = Form(""), note: str = Form("")) -> Response:
        who, session, refused = with_role(request, "appeals")
        console.check_csrf(session, csrf_token)
        if refused:
            return refused
        if outcome not in ("uphold", "overturn"):
            return await _appeals_page(request, session, status=422, error="Choose uphold or overturn.")
        try:
            await transactions.run_in_transaction(lambda conn, effects: handlers.decide_appeal(
                conn, appeal_id, outcome, who.name, note=note.strip()[:2000] or None, now=now(), cfg=cfg,
                effects=effects))
        except handlers.NotFound:
            return console.refuse(request, 404, "No such appeal", "There is no appeal with this id.")
        except handlers.Conflict as conflict:
            return await _appeals_page(request, session, status=409, error=str(conflict))
        return console.redirect(f"/appeals?done={outcome}")

    @router.get("/content/{content_id:path}")
    async def content_page(request: Request, content_id: str, done: str | None = None,
                           prev: str | None = None) -> Response:
        """Opening a queued item claims it for the moderator (or shows who holds it)."""
        who, session, refused = with_role(request, "moderator")
        if refused:
            return refused
        async with transactions.pool.acquire() as conn:
            await queues.claim(conn, content_id, who.name, now(), cfg.claim_minutes)
        notice = DONE.get(done or "")
        return await _content_page(request, session, who, content_id,
                                   notice=f"{prev} · {notice}" if notice and prev else notice)

    @router.post("/reveal")
    async def reveal_media(request: Request, csrf_token: str = Form(""), content_id: str = Form(""),
                           media_id: str = Form("")) -> Response:
        """Show one of the item's images unblurred to this moderator for a while: explicit, and recorded."""
        who, session, refused = with_role(request, "moderator")
        console.check_csrf(session, csrf_token)
        if refused:
            return refused
        async with transactions.pool.acquire() as conn:
            facts = platform_facts(await conn.fetchrow("SELECT * FROM platform_content WHERE content_id = $1",
                                                       content_id))
            if not cfg.media_url or facts is None or media_id not in {m.media_id for m in facts.media}:
                return console.refuse(request, 422, "Nothing to reveal",
                                      "The platform lists no such image for this content.")
            await conn.execute("INSERT INTO media_reveals (content_id, media_id, moderator, revealed_at)"
                               " VALUES ($1, $2, $3, $4)", content_id, media_id, who.name, now())
        log.info("media revealed", extra={"content_id": content_id, "media_id": media_id, "moderator": who.name})
        return console.redirect(f"{content_url(content_id)}#media")

    @router.post("/content/{content_id:path}")
    async def decide_content(request: Request, content_id: str, csrf_token: str = Form(""), action: str = Form(""),
                             category: str = Form(""), note: str = Form("")) -> Response:
        who, session, refused = with_role(request, "moderator")
        console.check_csrf(session, csrf_token)
        if refused:
            return refused
        if action not in ACTIONS + ("escalate", "claim") or (category and category not in ReportReason.__members__):
            return await _content_page(request, session, who, content_id, status=422, error="Choose a valid action.")
        note = note.strip()[:2000] or None
        async with transactions.pool.acquire() as conn:  # where the moderator goes after deciding this one
            following = (await queues.neighbours(conn, content_id, who.name, now()))["next"]
        try:
            if action == "claim":
                async with transactions.pool.acquire() as conn:
                    held = await queues.claim(conn, content_id, who.name, now(), cfg.claim_minutes)
                if held is None:
                    return await _content_page(request, session, who, content_id, status=409,
                                               error="This item is not in the queue: there is nothing to claim.")
                if held["moderator"] != who.name:
                    raise queues.Claimed(held["moderator"], held["expires_at"])
                return console.redirect(f"{content_url(content_id)}?done=claim")
            if action == "escalate":
                escalated = await transactions.run_in_transaction(
                    lambda conn, effects: queues.escalate(conn, content_id, who.name, note, now()))
                if not escalated:
                    return await _content_page(request, session, who, content_id, status=409,
                                               error="This item is not in the queue: there is nothing to escalate.")
            else:
                await transactions.run_in_transaction(lambda conn, effects: decide(
                    conn, effects, content_id, action, who.name, category=category or None, note=note))
        except handlers.NotFound:
            return console.refuse(request, 404, "No such content", "Moderation has no reports about this content.")
        except queues.Claimed as claimed:
            return await _content_page(request, session, who, content_id, status=409,
                                       error=f"Not decided: {claimed}.")
        except handlers.Conflict as conflict:
            return await _content_page(request, session, who, content_id, status=409, error=str(conflict))
        # On to the item after this one (severity first, skipping others' claims), else the first free one left.
        async with transactions.pool.acquire() as conn:
            if not (following and await conn.fetchval("SELECT true FROM queue WHERE content_id = $1", following)):
                following = (await queues.neighbours(conn, content_id, who.name, now()))["next"]
        if following and following != content_id:
            return console.redirect(f"{content_url(following)}?done={action}&prev={quote(content_id, safe='')}")
        return console.redirect(f"/?done={action}")

    async def _content_page(request: Request, session, who: Moderator, content_id: str, status: int = 200,
                            **extra) -> Response:
        at = now()
        async with transactions.pool.acquire() as conn:
            held = await queues.holder(conn, content_id, at)
            around = await queues.neighbours(conn, content_id, who.name, at)
            item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1", content_id)
            if item is None:
                return console.refuse(request, 404, "No such content", "Moderation has no reports about this content.")
            platform = await conn.fetchrow("SELECT * FROM platform_content WHERE content_id = $1", content_id)
            queued = await conn.fetchrow("SELECT * FROM queue WHERE content_id = $1", content_id)
            reports = await conn.fetch(  # a reporter with no row stands at trust_new (moderation.reports)
                """SELECT r.*, coalesce(p.trust, $2) AS trust, p.suspended_until, p.warned_at FROM reports r
                   LEFT JOIN reporters p USING (reporter_id) WHERE r.content_id = $1 ORDER BY r.reported_at""",
                content_id, cfg.trust_new)
            decisions = await conn.fetch("SELECT * FROM decisions WHERE content_id = $1 ORDER BY decided_at",
                                         content_id)
            appeals = await conn.fetch("SELECT appeal_id, status, reason, submitted_at, decided_by, decided_at,"
                                       " statement FROM appeals WHERE content_id = $1 ORDER BY submitted_at", content_id)
            revealed = {r["media_id"] for r in await conn.fetch(
                "SELECT media_id FROM media_reveals WHERE content_id = $1 AND moderator = $2 AND revealed_at > $3",
                content_id, who.name, at - timedelta(minutes=cfg.media_reveal_minutes))} if cfg.media_url else set()
            owner = platform["owner_account_id"] if platform else None
            owner_decisions = await conn.fetch(
                """SELECT d.content_id, d.action, d.category, d.decided_by, d.decided_at, d.automated_decision
                   FROM decisions d JOIN platform_content p USING (content_id)
                   WHERE p.owner_account_id = $1 AND d.content_id <> $2
                   ORDER BY d.decided_at DESC LIMIT 20""", owner, content_id) if owner else []
        return console.render(request, "content.html", session, status=status, item=item, queued=queued,
                              platform=platform, checked=automated_evidence(checks, platform_facts(platform)),
                              owner_decisions=owner_decisions, revealed=revealed, img_src=cfg.media_origin(),
                              by_reason=_by_reason(reports), history=score_history(reports, item["cleared_at"], cfg)[-HISTORY_SHOWN:],
                              reports_total=len(reports),
                              decisions=decisions, appeals=appeals, reasons=[r.value for r in ReportReason],
                              cfg=cfg, at=at, held=held, me=who.name, around=around, **extra)

    async def _appeals_page(request: Request, session, status: int = 200, **extra) -> Response:
        async with transactions.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT a.appeal_id, a.content_id, a.status, a.reason, a.submitted_at, a.decided_by, a.decided_at,
                          a.statement,
                          c.state, c.category, d.facts, d.automated_decision, d.decided_at AS delisted_at
                   FROM appeals a LEFT JOIN content c USING (content_id)
                   LEFT JOIN decisions d ON d.decision_id = a.decision_id
                   ORDER BY (a.status = 'open') DESC, a.submitted_at DESC LIMIT 300""")
        return console.render(request, "appeals.html", session, status=status,
                              open=[r for r in rows if r["status"] == "open"],
                              closed=[r for r in rows if r["status"] != "open"], **extra)

    console.install(app, router)


def waited(since: datetime, at: datetime) -> str:
    """Time in the queue, as a moderator reads it: 45 min, 3 h 05 min, 2 d 4 h."""
    minutes = max(0, int((at - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def sla(queued_at: datetime, urgent: bool, at: datetime, cfg: ModerationConfig) -> tuple[str, bool]:
    """What is left of the item's time to a decision ("due in 40 min"), or by how much it is past it
    ("past SLA by 2 h 05 min", True): high severity within sla_hours_high, the rest within sla_hours_normal."""
    due = queued_at + timedelta(hours=cfg.sla_hours_high if urgent else cfg.sla_hours_normal)
    if at >= due:
        return f"past SLA by {waited(due, at)}", True
    return f"due in {waited(at, due)}", False


@dataclass(frozen=True)
class Evidence:
    """The automated checks run again on the platform's current facts, for the moderator to read."""
    check: Check
    media: list[MediaInBank]
    items: list[ContentMedia]  # the content's media, as the platform lists them


def platform_facts(platform) -> ContentUpdated | None:
    """The platform's facts from their projected row, in the event's shape (None: no row)."""
    if platform is None:
        return None
    try:
        return facts_of_row(platform)
    except ValidationError:  # projected from a valid event, so not expected: the page shows the rest
        return None


def automated_evidence(checks: Checks, facts: ContentUpdated | None) -> Evidence | None:
    """What the text banks, the media banks and the classifier find in the platform's facts now (None: the
    platform has not described the content). The classifier's strongest words are the phrases that drove
    its score; the media matches name the bank and the distance, never show an image."""
    if facts is None:
        return None
    return Evidence(checks.check(facts), checks.media.matches(facts) if facts.public_in_search else [], facts.media)


# An item a brigade reported tens of thousands of times is shown, not all of it rendered: the counts and
# weights cover every report, the tables the latest of each reason and of the score's history.
REPORTS_SHOWN_PER_REASON = 100
HISTORY_SHOWN = 200


def _by_reason(reports) -> list[dict]:
    groups: dict[str, dict] = {}
    for r in reports:
        group = groups.setdefault(r["reason"], {"reason": r["reason"], "reports": [], "count": 0, "contribution": 0.0})
        group["reports"].append(r)
        group["count"] += 1
        group["contribution"] += r["contribution"]
    for group in groups.values():
        group["reports"] = group["reports"][-REPORTS_SHOWN_PER_REASON:]
    return sorted(groups.values(), key=lambda g: (-g["contribution"], g["reason"]))


def score_history(reports, cleared_at: datetime | None, cfg: ModerationConfig) -> list[dict]:
    """The item's window score after each report (in time order), replayed with the scoring rules the service
    applies: a reporter counts once inside the window, a suspended reporter's report not at all.

    In one pass: the window's start only moves forward with the reports' times, so the reports that leave it
    leave from the front of a queue, and the score is kept in 1/10,000ths (contributions are rounded to four
    places), exact whatever the order of additions and removals. Bank matches are not stored per report: they
    add to the live score the queue shows.
    """
    inside: deque[tuple[float, str, int]] = deque()  # (time, reporter, contribution in 1/10,000ths), in time order
    counted: set[str] = set()
    units = 0
    points = []
    for r in sorted(reports, key=lambda r: r["reported_at"]):
        at = r["reported_at"]
        start = scoring.window_start(at, cleared_at if cleared_at and cleared_at <= at else None, cfg).timestamp()
        while inside and inside[0][0] < start:
            _, reporter, part = inside.popleft()
            counted.discard(reporter)
            units -= part
        counts = not r["suspended"] and r["reporter_id"] not in counted
        if counts:
            part = round(r["contribution"] * 10_000)
            inside.append((at.timestamp(), r["reporter_id"], part))
            counted.add(r["reporter_id"])
            units += part
        points.append({"at": at, "reason": r["reason"], "contribution": r["contribution"] if counts else 0.0,
                       "score": units / 10_000, "suspended": r["suspended"]})
    return points
