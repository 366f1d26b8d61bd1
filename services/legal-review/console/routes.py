"""The reviewers' console: server-rendered pages over the same case functions the review API uses.

GET  /console/                           the queue: emergencies first, then by deadline; overdue in red
GET  /console/cases/{case_id}            request, authority, rules, flags, violations, reviews, audit trail
POST /console/cases/{case_id}/decisions  approve / narrow / reject with a reason (legal_review.decide)
POST /console/cases/{case_id}/clarifications  ask the authority a question instead (legal_review.decide)
POST /console/cases/{case_id}/claim      take the case for WARDEN_REVIEW_CLAIM_MINUTES (or extend one's hold)
POST /console/cases/{case_id}/release    give it back
POST /console/cases/{case_id}/notes      an internal note (never sent to the authority)
GET|POST /console/signin, POST /console/signout   (warden.console)
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from warden.authorities import find_authority
from warden.console import Console
from warden.contract.envelope import now
from warden.runtime.service import ServiceContext

from legal_review import assignments, audit, cases
from legal_review.api import case_detail, load_tokens
from legal_review.console.facts import earlier_cases, key_history, provenance
from legal_review.decide import CaseNotFound, add_note, ask_clarification, claim_case, decide_case, release_case
from legal_review.policy import current_policy
from legal_review.review import (
    ClarificationRequest, DecisionRequest, Reviewer, ReviewRefused, Vote, countdown, four_eyes,
)
from legal_review.settings import ReviewConsoleSettings

log = logging.getLogger(__name__)
PREFIX = "/console"
MESSAGES = {"approved": "Case approved: the decision is on its way to disclosure.",
            "rejected": "Case rejected: the authority will be told.",
            "recorded": "Your approval is recorded. The case waits for another reviewer.",
            "asked": "Your question is on its way to the authority. The deadline clock is paused until it answers.",
            "claimed": "You have taken this case: others can read it but not decide it until you release it.",
            "released": "You released the case: any reviewer can take it.",
            "noted": "Your note is kept with the case. It is internal: the authority never sees it."}
NOTE_MAX = 4000


def console_routes(app: FastAPI, runtime: ServiceContext) -> None:
    """Mount the reviewer console on the service's app (called from the review routes)."""
    console: Console[Reviewer] = Console(
        title="Legal review", prefix=PREFIX, cookie="warden_review_session",
        templates=Path(__file__).parent / "templates", tokens=load_tokens(),
        display=lambda r: f"{r.name} ({r.role})")
    console.env.globals["countdown"] = countdown
    claim_minutes = ReviewConsoleSettings().review_claim_minutes
    router = console.router()

    def pool():
        if runtime.pool is None:
            raise RuntimeError("the database is not connected yet")
        return runtime.pool

    @router.get("/")
    async def queue(request: Request) -> Response:
        who, session = console.signed_in(request)
        at = now()
        async with pool().acquire() as conn:
            pending = await cases.find_cases(conn, at, status="pending_review", limit=500)
            asking = await cases.find_cases(conn, at, status="needs_clarification", limit=500)
            votes = await _votes(conn, [c.case_id for c in pending])
            held = await assignments.holders(conn, [c.case_id for c in pending], at)
            decided = await conn.fetch(
                "SELECT case_id, status, decided_at, decided_by, emergency FROM cases"
                " WHERE status NOT IN ('pending_review', 'needs_clarification')"
                " ORDER BY decided_at DESC NULLS LAST LIMIT 20")
        return console.render(request, "queue.html", session, pending=pending, asking=asking, votes=votes,
                              held=held, decided=decided, at=at, me=who.name)

    @router.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: uuid.UUID, done: str | None = None) -> Response:
        who, session = console.signed_in(request)
        return await _case_page(request, session, str(case_id), notice=MESSAGES.get(done or ""))

    @router.post("/cases/{case_id}/decisions")
    async def decide(request: Request, case_id: uuid.UUID, csrf_token: str = Form(""), action: str = Form(""),
                     reason: str = Form(""), data_categories: list[str] = Form([]),
                     period_start: str = Form(""), period_end: str = Form("")) -> Response:
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        form = {"action": action, "reason": reason, "data_categories": data_categories,
                "period_start": period_start, "period_end": period_end}
        try:
            decision = _decision(action, reason, data_categories, period_start, period_end)
            decided = await decide_case(runtime, str(case_id), who, decision, now())
        except CaseNotFound:
            return console.refuse(request, 404, "No such case", "There is no case with this id.")
        except ReviewRefused as refused:
            return await _case_page(request, session, str(case_id), status=refused.status,
                                    error=refused.message, form=form)
        except (ValidationError, ValueError) as invalid:
            return await _case_page(request, session, str(case_id), status=422, error=_explain(invalid), form=form)
        done = decided.result.final or "recorded"
        return console.redirect(f"/cases/{case_id}?done={done}")

    @router.post("/cases/{case_id}/clarifications")
    async def ask(request: Request, case_id: uuid.UUID, csrf_token: str = Form(""), question: str = Form("")
                  ) -> Response:
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        try:
            asked = ClarificationRequest(question=question.strip())
            await ask_clarification(runtime, str(case_id), who, asked.question, now())
        except CaseNotFound:
            return console.refuse(request, 404, "No such case", "There is no case with this id.")
        except ReviewRefused as refused:
            return await _case_page(request, session, str(case_id), status=refused.status,
                                    error=refused.message, form={"question": question})
        except ValidationError as invalid:
            return await _case_page(request, session, str(case_id), status=422, error=_explain(invalid),
                                    form={"question": question})
        return console.redirect(f"/cases/{case_id}?done=asked")

    @router.post("/cases/{case_id}/claim")
    async def claim(request: Request, case_id: uuid.UUID, csrf_token: str = Form("")) -> Response:
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        try:
            hold = await claim_case(runtime, str(case_id), who, now(), claim_minutes)
        except CaseNotFound:
            return console.refuse(request, 404, "No such case", "There is no case with this id.")
        except ReviewRefused as refused:
            return await _case_page(request, session, str(case_id), status=refused.status, error=refused.message)
        if hold.reviewer != who.name:
            return await _case_page(request, session, str(case_id), status=409,
                                    error=f"{hold.reviewer} has already taken this case.")
        return console.redirect(f"/cases/{case_id}?done=claimed")

    @router.post("/cases/{case_id}/release")
    async def release(request: Request, case_id: uuid.UUID, csrf_token: str = Form("")) -> Response:
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        if not await release_case(runtime, str(case_id), who):
            return await _case_page(request, session, str(case_id), status=409,
                                    error="You do not hold this case: there is nothing to release.")
        return console.redirect(f"/cases/{case_id}?done=released")

    @router.post("/cases/{case_id}/notes")
    async def note(request: Request, case_id: uuid.UUID, csrf_token: str = Form(""), note: str = Form("")
                   ) -> Response:
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        text = note.strip()
        if not 1 <= len(text) <= NOTE_MAX:
            return await _case_page(request, session, str(case_id), status=422, form={"note": note},
                                    error=f"A note has 1 to {NOTE_MAX} characters.")
        try:
            await add_note(runtime, str(case_id), who, text, now())
        except CaseNotFound:
            return console.refuse(request, 404, "No such case", "There is no case with this id.")
        return console.redirect(f"/cases/{case_id}?done=noted#h-notes")

    async def _case_page(request: Request, session, case_id: str, status: int = 200, **extra) -> Response:
        at = now()
        async with pool().acquire() as conn:
            case = await cases.load_case(conn, case_id)
            if case is None:
                return console.refuse(request, 404, "No such case", "There is no case with this id.")
            detail = await case_detail(conn, case)
            authority = await find_authority(conn, case.authority_id)
            keys = await key_history(conn, case)
            history = await earlier_cases(conn, case)
            hold = await assignments.holder(conn, case.case_id, at)
            notes = await assignments.notes_of(conn, case.case_id)
            trail = await audit.case_entries(conn, case_id)
        votes = [Vote(r.reviewer, r.role, r.action) for r in detail.reviews]
        return console.render(request, "case.html", session, status=status, case=detail, authority=authority,
                              trail=trail, sources=_rule_sources(), at=at, keys=keys, history=history,
                              provenance=provenance(case, keys), hold=hold, notes=notes,
                              eyes=four_eyes(case, votes), me=session.who.name,
                              clock=countdown(case.deadline, at, case.clock_paused_at), **extra)

    console.install(app, router)


async def _votes(conn, case_ids: list[str]) -> dict[str, list]:
    # Votes of each case's current round: those given before an amendment were on another request.
    rows = await conn.fetch("SELECT r.case_id, r.reviewer, r.role, r.action, r.at FROM reviews r"
                            " JOIN cases c ON c.case_id = r.case_id AND r.round = c.review_round"
                            " WHERE r.case_id = ANY($1::uuid[]) ORDER BY r.id", case_ids)
    votes: dict[str, list] = {}
    for r in rows:
        votes.setdefault(str(r["case_id"]), []).append(r)
    return votes


def _decision(action: str, reason: str, categories: list[str], start: str, end: str) -> DecisionRequest:
    """The form as the API's DecisionRequest: scope fields count only when narrowing."""
    narrowing = action == "narrow"
    period = None
    if narrowing and (start or end):
        if not (start and end):
            raise ValueError("give both the start and the end of the narrowed period")
        period = {"start": _utc(start), "end": _utc(end)}
    return DecisionRequest.model_validate({
        "action": action, "reason": reason.strip(),
        "data_categories": (categories or None) if narrowing else None, "period": period})


def _utc(value: str) -> datetime:
    """<input type=datetime-local> has no zone: the form says UTC, so it is read as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _explain(invalid: Exception) -> str:
    if isinstance(invalid, ValidationError):
        parts = []
        for error in invalid.errors():
            field = ".".join(str(p) for p in error["loc"]) or "decision"
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {message}" if field != "decision" else message)
        return "; ".join(parts)
    return str(invalid)


def _rule_sources() -> dict[str, str]:
    return {spec.id: spec.source for spec in current_policy().rules}
