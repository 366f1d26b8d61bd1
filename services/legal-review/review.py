"""Human review rules: who may decide a case, and when a decision closes it. Pure, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
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
    """Check a reviewer's decision against the case and earlier votes; say whether it closes the case."""
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
