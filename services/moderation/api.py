"""The moderators' HTTP API: the queue, decisions on content, decisions on appeals.

Bearer tokens map to a moderator's name and roles (WARDEN_MODERATION_TOKENS):
`moderator` may read the queue and decide on content; `appeals` may decide appeals.
401 without a known token, 403 without the role, 404 unknown, 409 when the
content's or appeal's state does not allow the decision.
"""
from __future__ import annotations

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
        """Items waiting for a human, first the urgent, then trusted flaggers', then by score."""
        async with transactions.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT q.content_id, q.priority, q.urgent, q.trusted, q.score, q.reason, q.automated, q.queued_at,
                          c.state, c.kind FROM queue q JOIN content c USING (content_id)
                   ORDER BY q.priority DESC, q.queued_at LIMIT $1""", min(max(limit, 1), 1000))
        return [dict(r) for r in rows]

    @app.post("/moderation/content/{content_id}/decisions", tags=["moderation"], responses=ERRORS)
    async def decide_content(content_id: str, body: ContentDecision,
                             who: Moderator = Depends(moderator("moderator"))) -> dict:
        category = body.category.value if body.category else None
        return await _answer(transactions.run_in_transaction(lambda conn, effects: handlers.moderator_decision(
            conn, content_id, body.action, who.name, category=category, note=body.note, now=now(), cfg=cfg,
            effects=effects)))

    @app.get("/moderation/appeals/{appeal_id}", tags=["moderation"], responses=ERRORS)
    async def appeal(appeal_id: str, who: Moderator = Depends(moderator("appeals"))) -> dict:
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
