"""Human review rules: who may decide a case, and when a decision closes it. Pure, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from warden.contract.events import Period

from legal_review.cases import Case

Role = Literal["reviewer", "supervisor"]
Action = Literal["approve", "reject", "narrow"]


@dataclass(frozen=True)
class Reviewer:
    name: str
    role: Role


@dataclass(frozen=True)
class Vote:
    reviewer: str
    role: str
    action: str


class DecisionRequest(BaseModel):
    """A reviewer's decision on a case. `narrow` grants fewer categories and/or a shorter period."""

    action: Action
    reason: str = Field(min_length=3, max_length=4000, description="Written reason, kept in the audit log")
    data_categories: list[str] | None = Field(
        default=None, description="narrow only: a non-empty subset of the currently granted categories")
    period: Period | None = Field(default=None, description="narrow only: a period inside the granted one")

    @model_validator(mode="after")
    def _scope_only_when_narrowing(self) -> DecisionRequest:
        has_scope = self.data_categories is not None or self.period is not None
        if self.action == "narrow" and not has_scope:
            raise ValueError("narrow needs data_categories and/or period")
        if self.action != "narrow" and has_scope:
            raise ValueError("data_categories and period are only for action 'narrow'")
        return self


class ClarificationRequest(BaseModel):
    """A reviewer's question to the authority, instead of a decision: the case waits for its signed answer."""

    question: str = Field(min_length=3, max_length=4000,
                          description="What the authority must answer or amend; shown to it by the authority API "
                                      "and kept in the audit log")


class ReviewRefused(Exception):
    """The decision may not be taken: `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class VoteResult:
    final: Literal["approved", "rejected"] | None
    categories: list[str]
    period: Period | None
    approvers: list[str]


def judge_vote(case: Case, prior: list[Vote], reviewer: Reviewer, decision: DecisionRequest) -> VoteResult:
    """Check a reviewer's decision against the case and earlier votes (of this round: votes given before an
    amendment were on another request); say whether it closes the case."""
    if case.status == "needs_clarification":
        raise ReviewRefused(409, "awaiting_clarification", "the case waits for the authority's answer")
    if case.closed:
        raise ReviewRefused(409, "case_closed", f"the case is already {case.status}")
    if reviewer.role not in ("reviewer", "supervisor"):
        raise ReviewRefused(403, "role_not_allowed", "this role may not decide cases")
    if any(v.reviewer == reviewer.name for v in prior):
        raise ReviewRefused(403, "same_reviewer", "this reviewer already decided on this case; "
                                                  "a second approval must come from another reviewer")
    if decision.action == "reject":
        return VoteResult("rejected", case.granted_categories, case.period, [])
    categories, period = case.granted_categories, case.period
    if decision.action == "narrow":
        categories, period = narrowed_scope(case, decision)
    approvers = [v for v in prior if v.action in ("approve", "narrow")] + [Vote(reviewer.name, reviewer.role, "")]
    if len(approvers) < case.approvals_required:
        return VoteResult(None, categories, period, [v.reviewer for v in approvers])
    if case.supervisor_required and not any(v.role == "supervisor" for v in approvers):
        raise ReviewRefused(403, "supervisor_required",
                            "this case is flagged " + ", ".join(case.flags) + ": a supervisor must approve it")
    return VoteResult("approved", categories, period, [v.reviewer for v in approvers])


def narrowed_scope(case: Case, decision: DecisionRequest) -> tuple[list[str], Period]:
    """Narrowing only ever narrows: a subset of the categories, a period inside the granted one."""
    categories = case.granted_categories
    if decision.data_categories is not None:
        wanted = list(dict.fromkeys(decision.data_categories))
        if not wanted or any(c not in case.granted_categories for c in wanted):
            raise ReviewRefused(422, "narrow_widens",
                                f"data_categories must be a non-empty subset of {case.granted_categories}")
        categories = wanted
    period = case.period
    if decision.period is not None:
        p = decision.period
        if case.period is None or p.start >= p.end or p.start < case.period.start or p.end > case.period.end:
            raise ReviewRefused(422, "narrow_widens", "period must lie inside the granted period")
        period = p
    assert period is not None
    return categories, period


def may_ask(case: Case, reviewer: Reviewer) -> None:
    """A reviewer may ask the authority a question about a case awaiting review, one question at a time."""
    if reviewer.role not in ("reviewer", "supervisor"):
        raise ReviewRefused(403, "role_not_allowed", "this role may not review cases")
    if case.status == "needs_clarification":
        raise ReviewRefused(409, "awaiting_clarification", "a question is already open: the case waits for its answer")
    if case.closed:
        raise ReviewRefused(409, "case_closed", f"the case is already {case.status}")


def resumed_deadline(deadline: datetime, paused_at: datetime | None, at: datetime) -> datetime:
    """The review deadline once the authority answers: moved by the time the clock was paused."""
    if paused_at is None:
        return deadline
    return deadline + max(at - paused_at, timedelta(0))


@dataclass(frozen=True)
class Hold:
    """A reviewer's claim on a case, while it runs."""
    reviewer: str
    claimed_at: datetime
    expires_at: datetime


def may_act_on_held(hold: Hold | None, reviewer: Reviewer, at: datetime) -> None:
    """Only the holder decides or asks about a case someone has taken, until the hold runs out."""
    if hold is not None and hold.expires_at > at and hold.reviewer != reviewer.name:
        raise ReviewRefused(409, "held_by_another", f"{hold.reviewer} has taken this case until "
                                                    f"{hold.expires_at:%H:%M} UTC; it can be decided by them "
                                                    "or once they release it")


@dataclass(frozen=True)
class FourEyes:
    """Where a case stands on its approvals (votes of the current round)."""
    required: int
    supervisor_required: bool
    approvers: list[Vote]
    rejected_by: list[Vote]

    @property
    def missing(self) -> int:
        return max(self.required - len(self.approvers), 0)

    @property
    def supervisor_missing(self) -> bool:
        return self.supervisor_required and not any(v.role == "supervisor" for v in self.approvers)

    def voted(self, reviewer: str) -> bool:
        """judge_vote refuses a second vote by the same reviewer in a round."""
        return any(v.reviewer == reviewer for v in (*self.approvers, *self.rejected_by))


def four_eyes(case: Case, votes: list[Vote]) -> FourEyes:
    return FourEyes(case.approvals_required, case.supervisor_required,
                    [v for v in votes if v.action in ("approve", "narrow")],
                    [v for v in votes if v.action == "reject"])


@dataclass(frozen=True)
class Countdown:
    """Time left before a case's review deadline, as reviewers read it."""
    text: str
    overdue: bool
    paused: bool
    minutes_left: int


def countdown(deadline: datetime, at: datetime, paused_at: datetime | None = None) -> Countdown:
    """"3 h 12 min left", "overdue by 2 h"; while a question is open the clock stands where it was asked."""
    reference = paused_at or at
    left = deadline - reference
    overdue = left < timedelta(0)
    text = _duration(abs(left))
    text = f"overdue by {text}" if overdue else f"{text} left"
    if paused_at is not None:
        text = f"clock paused: {text}"
    return Countdown(text, overdue, paused_at is not None, int(left.total_seconds() // 60))


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"
