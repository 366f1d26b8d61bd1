"""The human review API: list and read cases, decide them, and the transparency report.

Bearer tokens map to reviewers and roles (`reviewer`, `supervisor`), configured by
WARDEN_REVIEW_TOKENS (JSON: {"token": {"reviewer": "alice", "role": "reviewer"}}) or
WARDEN_REVIEW_TOKENS_FILE (a JSON or YAML file of the same shape).
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, TypeAdapter

from warden.contract.envelope import now
from warden.contract.events import LegalRequest, Period
from warden.runtime.service import ConfigurationError, ServiceContext

from legal_review import cases, clarifications, decide
from legal_review.review import ClarificationRequest, DecisionRequest, Reviewer, ReviewRefused, Role
from legal_review.rules import RuleResult
from legal_review.transparency import build_report, report_csv, report_json

log = logging.getLogger(__name__)
TOKENS_ENV, TOKENS_FILE_ENV = "WARDEN_REVIEW_TOKENS", "WARDEN_REVIEW_TOKENS_FILE"


class TokenHolder(BaseModel):
    reviewer: str
    role: Role


def load_tokens() -> dict[str, Reviewer]:
    raw: Any = {}
    if os.environ.get(TOKENS_ENV):
        raw = json.loads(os.environ[TOKENS_ENV])
    elif os.environ.get(TOKENS_FILE_ENV):
        raw = yaml.safe_load(Path(os.environ[TOKENS_FILE_ENV]).read_text()) or {}
    holders = TypeAdapter(dict[str, TokenHolder]).validate_python(raw)
    return {token: Reviewer(h.reviewer, h.role) for token, h in holders.items() if token}


def require_review_tokens(settings) -> None:
    """Startup check: the reviewers' tokens parse; outside the embedded default there is at least one
    (without, nobody could sign in to review a case)."""
    try:
        tokens = load_tokens()
    except (ValueError, OSError, yaml.YAMLError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"{TOKENS_ENV} / {TOKENS_FILE_ENV} not usable: {type(exc).__name__} "
                                 "(expected {\"token\": {\"reviewer\": NAME, \"role\": reviewer|supervisor}})") from None
    if not tokens and not settings.embedded_defaults:
        raise ConfigurationError(f"{TOKENS_ENV} (or {TOKENS_FILE_ENV}) is not set: no reviewer could sign in "
                                 "(docs/deployment.md, 'Secrets'); `warden up` makes development tokens")


# --- response models (the OpenAPI document is generated from these) ----------------------

CaseStatus = Literal["pending_review", "needs_clarification", "approved", "rejected", "withdrawn"]

class CaseSummary(BaseModel):
    case_id: str
    request_id: str
    authority_id: str
    country: str | None
    status: CaseStatus
    kind: Literal["disclosure", "preservation"]
    emergency: bool
    flags: list[str]
    received_at: datetime
    deadline: datetime
    overdue: bool
    approvals_required: int
    supervisor_required: bool


class ReviewView(BaseModel):
    reviewer: str
    role: str
    action: str
    reason: str
    data_categories: list[str] | None
    period: Period | None
    at: datetime


class ClarificationView(BaseModel):
    """A reviewer's question to the authority and, once it came, the authority's signed answer."""
    clarification_id: str
    asked_by: str
    question: str
    asked_at: datetime
    answer: str | None
    answered_at: datetime | None


class ViolationView(BaseModel):
    content_id: str
    category: str
    decided_at: datetime


class CaseDetail(CaseSummary):
    request: LegalRequest
    rules: list[RuleResult]
    granted_categories: list[str]
    period: Period | None
    hold_until: datetime | None
    confirmation_due: datetime | None
    confirmed_by: str | None
    policy_version: str
    decided_by: list[str]
    decided_at: datetime | None
    reviews: list[ReviewView]
    violations: list[ViolationView]
    clarifications: list[ClarificationView] = []
    review_round: int = Field(0, description="amendments so far: only the votes of this round count")


class DecisionResponse(BaseModel):
    case: CaseDetail
    closed: bool
    message: str


class Problem(BaseModel):
    detail: str


class ValidationProblem(BaseModel):
    """FastAPI's own 422: the request does not match the schema (field paths and messages)."""
    detail: list[dict[str, Any]]


# A 422 is either ours (a refused decision, a bad quarter) or FastAPI's request validation.
UNPROCESSABLE = Problem | ValidationProblem


def case_summary(case: cases.Case, at: datetime) -> dict[str, Any]:
    return dict(case_id=case.case_id, request_id=case.request_id, authority_id=case.authority_id,
                country=case.country, status=case.status, kind=case.kind, emergency=case.emergency,
                flags=case.flags, received_at=case.received_at, deadline=case.deadline,
                overdue=case.status == "pending_review" and case.deadline < at,
                approvals_required=case.approvals_required, supervisor_required=case.supervisor_required)


async def case_detail(conn, case: cases.Case) -> CaseDetail:
    reviews = [ReviewView(reviewer=r["reviewer"], role=r["role"], action=r["action"], reason=r["reason"],
                          data_categories=r["data_categories"], at=r["at"],
                          period=Period(start=r["period_start"], end=r["period_end"]) if r["period_start"] else None)
               for r in await cases.reviews_of(conn, case.case_id) if r["round"] == case.review_round]
    questions = [ClarificationView(**{**dict(q), "clarification_id": str(q["clarification_id"])})
                 for q in await clarifications.questions_of(conn, case.case_id)]
    violations = [ViolationView(**dict(v)) for v in await cases.violations_of(conn, case.suspect_account_id)]
    return CaseDetail(
        **case_summary(case, now()), request=case.request, rules=case.results,
        granted_categories=case.granted_categories, period=case.period, hold_until=case.hold_until,
        confirmation_due=case.confirmation_due, confirmed_by=case.confirmed_by, policy_version=case.policy_version,
        decided_by=case.decided_by, decided_at=case.decided_at, reviews=reviews, violations=violations,
        clarifications=questions, review_round=case.review_round)


AUTH_ERRORS = {401: {"model": Problem, "description": "missing or unknown bearer token"},
               503: {"model": Problem, "description": "the database is unreachable: retry later"}}


def review_routes(app: FastAPI, runtime: ServiceContext) -> None:
    """Mount the review API on the service's app (Service.routes)."""
    tokens = load_tokens()
    if not tokens:
        log.warning("no review tokens configured: the review API refuses every request",
                    extra={"configure": f"{TOKENS_ENV} or {TOKENS_FILE_ENV}"})
    bearer = HTTPBearer(auto_error=False, description="A reviewer's token (WARDEN_REVIEW_TOKENS)")

    async def reviewer_of(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Reviewer:
        if credentials is not None and credentials.scheme.lower() == "bearer":
            presented = credentials.credentials.encode()
            for token, reviewer in tokens.items():
                if hmac.compare_digest(presented, token.encode()):
                    return reviewer
        raise HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})

    def pool():
        if runtime.pool is None:
            raise HTTPException(503, "the database is not connected yet")
        return runtime.pool

    router = APIRouter(prefix="/review", tags=["review"], responses=AUTH_ERRORS)

    @router.get("/cases", response_model=list[CaseSummary])
    async def list_cases(
        reviewer: Reviewer = Depends(reviewer_of),
        status: Literal[CaseStatus, ""] = Query(
            "pending_review", description="only cases in this status; `status=` (empty) lists every case"),
        overdue: bool | None = Query(None, description="only cases past (true) or within (false) their deadline"),
        due_before: datetime | None = Query(None, description="only cases whose deadline is before this time"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[CaseSummary]:
        """Cases by status, emergencies first, then by deadline."""
        at = now()
        async with pool().acquire() as conn:
            found = await cases.find_cases(conn, at, status=status or None, overdue=overdue, due_before=due_before,
                                           limit=limit)
        return [CaseSummary(**case_summary(c, at)) for c in found]

    @router.get("/cases/{case_id}", response_model=CaseDetail, responses={404: {"model": Problem}})
    async def read_case(case_id: uuid.UUID, reviewer: Reviewer = Depends(reviewer_of)) -> CaseDetail:
        """A case: the request, every rule's result, flags, reviews so far and the suspect's confirmed violations."""
        async with pool().acquire() as conn:
            case = await cases.load_case(conn, str(case_id))
            if case is None:
                raise HTTPException(404, "no such case")
            return await case_detail(conn, case)

    @router.post("/cases/{case_id}/decisions", response_model=DecisionResponse, responses={
        403: {"model": Problem, "description": "wrong role, or a second decision by the same reviewer"},
        404: {"model": Problem}, 409: {"model": Problem, "description": "the case is already closed, waits for the "
                                                        "authority's answer, or another reviewer has taken it"},
        422: {"model": UNPROCESSABLE, "description": "invalid decision (e.g. narrowing that widens)"}})
    async def decide_case(case_id: uuid.UUID, decision: DecisionRequest,
                          reviewer: Reviewer = Depends(reviewer_of)) -> DecisionResponse:
        """Approve, reject or narrow a case, with a written reason.

        One rejection closes a case. Flagged cases need approvals from two distinct reviewers
        (one for emergencies), and a supervisor among them when a human-rights or high-risk
        flag is set. The final decision goes out on `legal.requests.decided` and
        `legal.requests.status`.
        """
        try:
            decided = await decide.decide_case(runtime, str(case_id), reviewer, decision, now())
        except decide.CaseNotFound:
            raise HTTPException(404, "no such case") from None
        except ReviewRefused as refused:
            raise HTTPException(refused.status, f"{refused.code}: {refused.message}") from None
        async with pool().acquire() as conn:
            detail = await case_detail(conn, decided.case)
        return DecisionResponse(case=detail, closed=decided.closed, message=decided.message)

    @router.post("/cases/{case_id}/clarifications", response_model=CaseDetail, status_code=201, responses={
        403: {"model": Problem, "description": "this role may not review cases"},
        404: {"model": Problem},
        409: {"model": Problem, "description": "the case is closed, a question is already open, or another "
                                               "reviewer has taken it"}})
    async def ask_clarification(case_id: uuid.UUID, clarification: ClarificationRequest,
                                reviewer: Reviewer = Depends(reviewer_of)) -> CaseDetail:
        """Ask the authority a question instead of approving or rejecting.

        The case becomes `needs_clarification` (on `legal.requests.status`; the question itself only
        reaches the authority through the authority API) and its deadline clock is paused. The
        authority's signed answer (`legal.requests.amended`) is analysed again under the policy and
        the case comes back to review, its deadline moved by the time paused.
        """
        try:
            case = await decide.ask_clarification(runtime, str(case_id), reviewer, clarification.question, now())
        except decide.CaseNotFound:
            raise HTTPException(404, "no such case") from None
        except ReviewRefused as refused:
            raise HTTPException(refused.status, f"{refused.code}: {refused.message}") from None
        async with pool().acquire() as conn:
            return await case_detail(conn, case)

    @router.get("/transparency", responses={
        200: {"description": "the report (JSON, or CSV with format=csv)",
              "content": {"text/csv": {"schema": {"type": "string"}}}},
        422: {"model": UNPROCESSABLE}})
    async def transparency(quarter: str = Query(..., examples=["2024Q3"], pattern=r"^[0-9]{4}Q[1-4]$"),
                           format: Literal["json", "csv"] = "json",
                           reviewer: Reviewer = Depends(reviewer_of)):
        """The quarterly transparency report per country (see docs/legal-review.md for each column)."""
        async with pool().acquire() as conn:
            try:
                report = await build_report(conn, quarter)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
        if format == "csv":
            return PlainTextResponse(report_csv(report), media_type="text/csv")
        return report_json(report)

    app.include_router(router)
