"""The moderators' HTTP API: the queue, decisions on content, decisions on appeals.

Bearer tokens map to a moderator's name and roles (WARDEN_MODERATION_TOKENS):
`moderator` may read the queue and decide on content; `appeals` may decide appeals.
401 without a known token, 403 without the role, 404 unknown, 409 when the
content's or appeal's state does not allow the decision.
"""
from __future__ import annotations

import json
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from warden.contract.envelope import now
from warden.contract.events import ReportReason

from moderation import handlers
from moderation.config import Moderator, ModerationConfig
from moderation.transactions import Transactions

_bearer = HTTPBearer(auto_error=False)


class Problem(BaseModel):
    detail: str


# Documented so clients (and schemathesis) know every status the API answers with.
ERRORS = {401: {"model": Problem, "description": "missing or unknown bearer token"},
          403: {"model": Problem, "description": "the token lacks the role"},
          404: {"model": Problem, "description": "no such content or appeal"},
          409: {"model": Problem, "description": "the state does not allow this decision"}}


class ContentDecision(BaseModel):
    action: Literal["delist", "keep", "restore"]
    category: ReportReason | None = None
    note: str | None = Field(default=None, max_length=2000)


class AppealDecision(BaseModel):
    outcome: Literal["uphold", "overturn"]
    note: str | None = Field(default=None, max_length=2000)


def add_routes(app: FastAPI, transactions: Transactions, cfg: ModerationConfig) -> None:
    def moderator(role: str):
        def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Moderator:
            who = cfg.tokens.get(credentials.credentials) if credentials else None
            if who is None:
                raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            if role not in who.roles:
                raise HTTPException(403, f"the {role!r} role is required")
            return who
        return check

    @app.get("/moderation/queue", tags=["moderation"], responses=ERRORS)
    async def queue(limit: int = 100, who: Moderator = Depends(moderator("moderator"))) -> list[dict]:
        """Items waiting for a human: high-severity matches first (`urgent`), then trusted flaggers', then by
        the classifier's score on the content (`model_score`), then by report score; `coordinated` marks a burst of unproven reporters, `source` where the item came from."""
        async with transactions.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT q.content_id, q.priority, q.urgent, q.trusted, q.score, q.reason, q.automated, q.queued_at,
                          q.coordinated, q.source, c.state, c.kind, p.model_score, p.model_label, p.model_version
                   FROM queue q JOIN content c USING (content_id) LEFT JOIN platform_content p USING (content_id)
                   ORDER BY q.urgent DESC, q.trusted DESC, p.model_score DESC NULLS LAST, q.priority DESC,
                            q.queued_at LIMIT $1""", min(max(limit, 1), 1000))
        return [dict(r) for r in rows]

    @app.get("/moderation/content/{content_id}", tags=["moderation"], responses=ERRORS)
    async def content(content_id: str, who: Moderator = Depends(moderator("moderator"))) -> dict:
        """The item: what the platform says it is (`platform`, null when not described), moderation's state, and
        its reports with what each reporter claimed (title, text, owner: shown, never acted on)."""
        async with transactions.pool.acquire() as conn:
            item = await conn.fetchrow("SELECT content_id, kind, state, category, first_reported_at, cleared_at,"
                                       " violation_confirmed_at FROM content WHERE content_id = $1", content_id)
            if item is None:
                raise HTTPException(404, "no such content")
            platform = await conn.fetchrow(
                """SELECT kind, owner_account_id, title, text, language, public_in_search, media::text AS media,
                          created_at, updated_at, removed_at FROM platform_content WHERE content_id = $1""",
                content_id)
            reports = await conn.fetch(
                """SELECT report_id, reporter_id, reason, surface, reported_at, trusted, suspended, established,
                          outcome, pending_since IS NOT NULL AS pending, claimed_kind, claimed_title, claimed_text,
                          claimed_owner, comment FROM reports WHERE content_id = $1 ORDER BY seq LIMIT 500""",
                content_id)
            matches = await conn.fetch("SELECT bank_id, category, high_severity, matched_at FROM bank_matches"
                                       " WHERE content_id = $1 ORDER BY bank_id", content_id)
        facts = dict(platform) if platform else None
        if facts:
            facts["media"] = json.loads(facts["media"])
        return {**dict(item), "platform": facts, "bank_matches": [dict(m) for m in matches],
                "reports": [dict(r) for r in reports]}

    @app.post("/moderation/content/{content_id}/decisions", tags=["moderation"], responses=ERRORS)
    async def decide_content(content_id: str, body: ContentDecision,
                             who: Moderator = Depends(moderator("moderator"))) -> dict:
        category = body.category.value if body.category else None
        return await _answer(transactions.run_in_transaction(lambda conn, effects: handlers.moderator_decision(
            conn, content_id, body.action, who.name, category=category, note=body.note, now=now(), cfg=cfg,
            effects=effects)))

    @app.get("/moderation/appeals/{appeal_id}", tags=["moderation"], responses=ERRORS)
    async def appeal(appeal_id: str, who: Moderator = Depends(moderator("appeals"))) -> dict:
        """The appeal: the appellant's statement, `submitted_at` (when Warden received it) beside the time the
        client claimed, status and who decided."""
        async with transactions.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM appeals WHERE appeal_id = $1", appeal_id)
        if row is None:
            raise HTTPException(404, "no such appeal")
        return dict(row)

    @app.post("/moderation/appeals/{appeal_id}/decisions", tags=["moderation"], responses=ERRORS)
    async def decide_appeal(appeal_id: str, body: AppealDecision,
                            who: Moderator = Depends(moderator("appeals"))) -> dict:
        return await _answer(transactions.run_in_transaction(lambda conn, effects: handlers.decide_appeal(
            conn, appeal_id, body.outcome, who.name, note=body.note, now=now(), cfg=cfg, effects=effects)))


async def _answer(work) -> dict:
    try:
        return await work
    except handlers.NotFound:
        raise HTTPException(404, "not found") from None
    except handlers.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
