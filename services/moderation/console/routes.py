"""The moderators' console: server-rendered pages over the decisions the moderation API takes.

GET  /console/                        the report queue, in priority order (high severity, trusted flaggers, score)
GET  /console/content/{content_id}    what the platform says it is, reports grouped by reason with each
                                      reporter's claim, reporter trust, bank matches, score history
POST /console/content/{content_id}    delist / keep / restore            (handlers.moderator_decision)
GET  /console/appeals                 open appeals first, then decided and refused ones
POST /console/appeals/{appeal_id}     uphold / overturn                  (handlers.decide_appeal)
GET|POST /console/signin, POST /console/signout   (warden.console)
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response

from warden.console import Console
from warden.contract.envelope import now
from warden.contract.events import ReportReason

from moderation import handlers, scoring
from moderation.config import ModerationConfig, Moderator
from moderation.transactions import Transactions

log = logging.getLogger(__name__)
PREFIX = "/console"
ACTIONS = ("delist", "keep", "restore")
DONE = {"delist": "Delisted: the content is out of search and the statement of reasons is sent.",
        "keep": "Kept: the content stays in search; the reports are marked unfounded.",
        "restore": "Restored: the content is back in search.",
        "uphold": "Appeal decided: the delisting is upheld.",
        "overturn": "Appeal decided: the delisting is overturned and the content relisted."}


def content_url(content_id: str) -> str:
    return f"/content/{quote(content_id, safe='')}"


def add_console(app: FastAPI, transactions: Transactions, cfg: ModerationConfig) -> None:
    """Mount the moderator console on the service's app, next to the API (add_routes)."""
    console: Console[Moderator] = Console(
        title="Moderation", prefix=PREFIX, cookie="warden_moderation_session",
        templates=Path(__file__).parent / "templates", tokens=cfg.tokens,
        display=lambda m: f"{m.name} ({', '.join(m.roles) or 'no role'})")
    console.env.globals["content_url"] = content_url
    router = console.router()

    def with_role(request: Request, role: str):
        who, session = console.signed_in(request)
        if role not in who.roles:
            return who, session, console.refuse(request, 403, "Not allowed",
                                                f"Your token does not carry the {role!r} role.")
        return who, session, None

    @router.get("/")
    async def queue(request: Request) -> Response:
        who, session, refused = with_role(request, "moderator")
        if refused:
            return refused
        async with transactions.pool.acquire() as conn:
            items = await conn.fetch(
                """SELECT q.content_id, q.priority, q.urgent, q.trusted, q.score, q.reason, q.automated, q.queued_at,
                          q.coordinated, q.source, c.state, c.kind,
                          (SELECT count(DISTINCT reporter_id) FROM reports r WHERE r.content_id = q.content_id
                             AND r.reported_at >= coalesce(c.cleared_at, '-infinity')) AS reporters
                          , p.model_score, p.model_label
                   FROM queue q JOIN content c USING (content_id) LEFT JOIN platform_content p USING (content_id)
                   ORDER BY q.urgent DESC, q.trusted DESC, p.model_score DESC NULLS LAST, q.priority DESC,
                            q.queued_at LIMIT 500""")
        return console.render(request, "queue.html", session, items=items, cfg=cfg,
                              appeals_role="appeals" in who.roles)

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
    async def content_page(request: Request, content_id: str, done: str | None = None) -> Response:
        who, session, refused = with_role(request, "moderator")
        if refused:
            return refused
        return await _content_page(request, session, content_id, notice=DONE.get(done or ""))

    @router.post("/content/{content_id:path}")
    async def decide_content(request: Request, content_id: str, csrf_token: str = Form(""), action: str = Form(""),
                             category: str = Form(""), note: str = Form("")) -> Response:
        who, session, refused = with_role(request, "moderator")
        console.check_csrf(session, csrf_token)
        if refused:
            return refused
        if action not in ACTIONS or (category and category not in ReportReason.__members__):
            return await _content_page(request, session, content_id, status=422, error="Choose a valid action.")
        try:
            await transactions.run_in_transaction(lambda conn, effects: handlers.moderator_decision(
                conn, content_id, action, who.name, category=category or None, note=note.strip()[:2000] or None,
                now=now(), cfg=cfg, effects=effects))
        except handlers.NotFound:
            return console.refuse(request, 404, "No such content", "Moderation has no reports about this content.")
        except handlers.Conflict as conflict:
            return await _content_page(request, session, content_id, status=409, error=str(conflict))
        return console.redirect(f"{content_url(content_id)}?done={action}")

    async def _content_page(request: Request, session, content_id: str, status: int = 200, **extra) -> Response:
        async with transactions.pool.acquire() as conn:
            item = await conn.fetchrow("SELECT * FROM content WHERE content_id = $1", content_id)
            if item is None:
                return console.refuse(request, 404, "No such content", "Moderation has no reports about this content.")
            platform = await conn.fetchrow("SELECT * FROM platform_content WHERE content_id = $1", content_id)
            queued = await conn.fetchrow("SELECT * FROM queue WHERE content_id = $1", content_id)
            reports = await conn.fetch(
                """SELECT r.*, p.trust, p.suspended_until, p.warned_at FROM reports r
                   JOIN reporters p USING (reporter_id) WHERE r.content_id = $1 ORDER BY r.reported_at""", content_id)
            decisions = await conn.fetch("SELECT * FROM decisions WHERE content_id = $1 ORDER BY decided_at",
                                         content_id)
            appeals = await conn.fetch("SELECT appeal_id, status, reason, submitted_at, decided_by, decided_at,"
                                       " statement FROM appeals WHERE content_id = $1 ORDER BY submitted_at", content_id)
        return console.render(request, "content.html", session, status=status, item=item, queued=queued,
                              platform=platform,
                              by_reason=_by_reason(reports), history=score_history(reports, item["cleared_at"], cfg),
                              decisions=decisions, appeals=appeals, reasons=[r.value for r in ReportReason],
                              cfg=cfg, at=now(), **extra)

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


def _by_reason(reports) -> list[dict]:
    groups: dict[str, dict] = {}
    for r in reports:
        group = groups.setdefault(r["reason"], {"reason": r["reason"], "reports": [], "contribution": 0.0})
        group["reports"].append(r)
        group["contribution"] += r["contribution"]
    return sorted(groups.values(), key=lambda g: (-g["contribution"], g["reason"]))


def score_history(reports, cleared_at: datetime | None, cfg: ModerationConfig) -> list[dict]:
    """The item's window score after each report, replayed with the scoring rules the service applies.

    Bank matches are not stored per report: they add to the live score the queue shows.
    """
    window: scoring.Reports = {}
    points = []
    for r in reports:
        at = r["reported_at"]
        start = scoring.window_start(at, cleared_at if cleared_at and cleared_at <= at else None, cfg)
        counted = r["reporter_id"] not in {k for k, v in window.items() if v[1] >= start.timestamp()}
        window = scoring.add_report(window, r["reporter_id"], r["contribution"], at, start)
        points.append({"at": at, "reason": r["reason"], "contribution": r["contribution"] if counted else 0.0,
                       "score": scoring.window_score(window, start), "suspended": r["suspended"]})
    return points
