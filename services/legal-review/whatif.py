"""Policy what-if: replay cases under a candidate policy and say which decisions would change, and why.

`warden policy diff NEW.yaml` compares the machine's assessment of each case under the policy
in force and under NEW.yaml: its outcome, and every rule whose verdict differs. The cases are
the shipped reference set (reference_cases.yaml: one request per legal statement, with the
outcome the policy in force must give) or the cases recorded in the legal_review schema.
Replays are pure: what a recorded case's assessment also read from other cases (an earlier hold,
holds on the suspect) is not replayed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from pydantic import BaseModel, ConfigDict, Field

from warden.contract.events import AuthorityRegistered, LegalRequest

from legal_review.policy import Policy
from legal_review.rules import Assessment, Facts, assess

REFERENCE_CASES_FILE = Path(__file__).parent / "reference_cases.yaml"
# Reference cases are assessed as received at this instant; their dates are relative to it.
REFERENCE_RECEIVED_AT = datetime(2024, 9, 15, 12, 0, tzinfo=timezone.utc)
_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # any valid key: reference authorities sign nothing


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str
    codes: list[str] = Field(default_factory=list, description="codes of the rules that did not pass, sorted")


class ReferenceCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    says: str
    authority: dict[str, str] = Field(default_factory=dict)
    request: dict[str, Any] = Field(default_factory=dict)
    expected: Expected


@dataclass(frozen=True)
class RuleChange:
    rule: str
    before: str  # outcome:code, or "-" when the rule did not exist
    after: str


@dataclass(frozen=True)
class DecisionChange:
    case: str
    before: str
    after: str
    rules: list[RuleChange]


def _base_request(at: datetime) -> dict[str, Any]:
    return {
        "request_id": "REF", "authority_id": "ref-authority",
        "instrument": {"type": "court_order", "reference": "REF 1", "issued_by": "Investigating judge",
                       "issued_at": at - timedelta(days=2), "expires_at": at + timedelta(days=60)},
        "suspect": {"account_id": "ref-suspect"},
        "offense": {"category": "drug_trafficking", "statute": "Statute", "description": "Sale of drugs"},
        "data_categories": ["ip_addresses", "phone_number"],
        "period": {"start": at - timedelta(days=60), "end": at - timedelta(days=1)},
        "emergency": False, "nondisclosure_until": None, "signature": "reference",
    }


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def reference_facts(case: ReferenceCase) -> Facts:
    at = REFERENCE_RECEIVED_AT
    request = LegalRequest.model_validate(_merge(_base_request(at), case.request))
    fields = {"kind": "court", "country": "FR", "status": "active", **case.authority}
    authority = None if fields.get("kind") == "unknown" else AuthorityRegistered(
        authority_id="ref-authority", name="Reference", public_key=_KEY, updated_at=at - timedelta(days=30), **fields)
    return Facts(request, at, authority)


def load_reference_cases(path: Path = REFERENCE_CASES_FILE) -> list[ReferenceCase]:
    return [ReferenceCase.model_validate(c) for c in yaml.safe_load(path.read_text())["cases"]]


def verdicts(assessment: Assessment) -> dict[str, str]:
    return {r.rule: f"{r.outcome}:{r.code}" for r in assessment.results}


def not_passed(assessment: Assessment) -> list[str]:
    return sorted(r.code for r in assessment.results if r.outcome != "passed")


def compare(name: str, facts: Facts, current: Policy, candidate: Policy) -> DecisionChange | None:
    """How the machine's decision on `facts` changes from `current` to `candidate`; None when it does not."""
    before, after = assess(facts, current), assess(facts, candidate)
    old, new = verdicts(before), verdicts(after)
    rules = [RuleChange(rule, old.get(rule, "-"), new.get(rule, "-"))
             for rule in dict.fromkeys([*old, *new]) if old.get(rule) != new.get(rule)]
    describe = lambda a: a.outcome + (f" ({', '.join(a.flags)})" if a.flags else "")  # noqa: E731
    if describe(before) == describe(after) and not rules:
        return None
    return DecisionChange(name, describe(before), describe(after), rules)


async def recorded_facts(conn: asyncpg.Connection, limit: int) -> list[tuple[str, Facts]]:
    """The newest recorded cases, as received, with their authority's registry record now."""
    rows = await conn.fetch(
        "SELECT c.case_id, c.request, c.received_at, a.authority_id AS registered, a.name, a.country AS a_country,"
        " a.kind, a.public_key, a.status AS a_status, a.updated_at"
        " FROM legal_review.cases c LEFT JOIN legal_review.authorities a ON a.authority_id = c.authority_id"
        " ORDER BY c.received_at DESC LIMIT $1", limit)
    found = []
    for row in rows:
        request = LegalRequest.model_validate_json(row["request"])
        authority = AuthorityRegistered(
            authority_id=row["registered"], name=row["name"], country=row["a_country"], kind=row["kind"],
            public_key=row["public_key"], status=row["a_status"], updated_at=row["updated_at"],
        ) if row["registered"] else None
        found.append((str(row["case_id"]), Facts(request, row["received_at"], authority)))
    return found


def render(changes: list[DecisionChange], total: int, current: Policy, candidate: Policy) -> str:
    lines = [f"policy {current.version} -> {candidate.version}: {len(changes)} of {total} decisions would change"]
    for change in changes:
        lines.append(f"{change.case}: {change.before} -> {change.after}")
        lines += [f"    {r.rule}: {r.before} -> {r.after}" for r in change.rules]
    return "\n".join(lines)
