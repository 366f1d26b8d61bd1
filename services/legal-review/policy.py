"""The policy file (policy.yaml) as pydantic models, and where to find it."""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger(__name__)
DEFAULT_POLICY_FILE = Path(__file__).parent / "policy.yaml"
POLICY_FILE_ENV = "WARDEN_POLICY_FILE"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(Strict):
    id: str
    description: str = Field(min_length=1)
    source: str = Field(min_length=1)


class IssuerGrant(Strict):
    kinds: list[Literal["court", "prosecutor", "police"]]
    instruments: list[str]
    where: Literal["any", "eu", "non_eu"]
    source: str


class InstrumentPolicy(Strict):
    clock_skew_minutes: int = Field(ge=0)


class OffensePolicy(Strict):
    criminal: list[str]
    speech: list[str]
    needs_review: list[str]


class DataPolicy(Strict):
    grantable: list[str] = Field(min_length=1)


class PeriodPolicy(Strict):
    max_months: int = Field(ge=1)
    retention_days: int = Field(ge=1)


class JurisdictionPolicy(Strict):
    high_risk: list[str]


class DeadlinePolicy(Strict):
    standard_hours: int = Field(ge=1)
    emergency_hours: int = Field(ge=1)


class EmergencyPolicy(Strict):
    confirmation_hours: int = Field(ge=1)
    confirmation_exempt_kinds: list[str]
    confirming_kinds: list[str]


class HoldTerms(Strict):
    hold_days: int = Field(ge=1)
    extension_days: int = Field(ge=1)


class PreservationPolicy(Strict):
    eu: HoldTerms
    other: HoldTerms
    max_extensions: int = Field(ge=0)


class NondisclosurePolicy(Strict):
    max_days: int = Field(ge=1)
    source: str


class NoticeRule(Strict):
    by: Literal["platform", "authority"]
    source: str = Field(min_length=1)


class NoticePolicy(Strict):
    """Who tells the person, per jurisdiction; emergencies: nobody before the validation window ends."""

    eu: NoticeRule
    other: NoticeRule
    emergency_source: str = Field(min_length=1)


class ReviewPolicy(Strict):
    approvals_required: int = Field(ge=1)
    single_reviewer_flags: list[str]
    supervisor_flags: list[str]


class Policy(Strict):
    version: str = Field(min_length=1)
    rules: list[RuleSpec]
    eu_member_states: list[str]
    issuers: list[IssuerGrant]
    non_judicial_instruments: list[str]
    instrument: InstrumentPolicy
    offenses: OffensePolicy
    data: DataPolicy
    period: PeriodPolicy
    jurisdictions: JurisdictionPolicy
    deadlines: DeadlinePolicy
    emergency: EmergencyPolicy
    preservation: PreservationPolicy
    nondisclosure: NondisclosurePolicy
    notices: NoticePolicy
    review: ReviewPolicy

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        ids = [r.id for r in rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return rules

    def is_eu(self, country: str | None) -> bool:
        return country is not None and country in self.eu_member_states

    def rule(self, rule_id: str) -> RuleSpec:
        for spec in self.rules:
            if spec.id == rule_id:
                return spec
        raise KeyError(rule_id)


def parse_policy(text: str) -> Policy:
    return Policy.model_validate(yaml.safe_load(text))


def policy_path() -> Path:
    return Path(os.environ.get(POLICY_FILE_ENV) or DEFAULT_POLICY_FILE)


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> Policy:
    from legal_review.rules import check_policy  # the rule registry validates the rule list

    policy = parse_policy(path.read_text())
    check_policy(policy)
    return policy


_last_good: dict[Path, Policy] = {}


def current_policy() -> Policy:
    """The policy in force: WARDEN_POLICY_FILE, else the shipped default (re-read when the file changes).

    A file that stops parsing after the service started keeps the last good policy in force
    (and says so in the log) rather than dead-lettering every request; at startup it is fatal.
    """
    path = policy_path()
    try:
        policy = _load(path, path.stat().st_mtime)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        if path not in _last_good:
            raise
        log.error("policy file invalid, keeping the last good policy",
                  extra={"version": _last_good[path].version, "error_type": type(exc).__name__})
        return _last_good[path]
    _last_good[path] = policy
    return policy
