"""The policy file (policy.yaml) as pydantic models, and where to find it."""
from __future__ import annotations

import logging
import os
import time
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


class HoldTerms(Strict):
    hold_days: int = Field(ge=1)
    extension_days: int = Field(ge=1)


class NoticeRule(Strict):
    by: Literal["platform", "authority"]
    source: str = Field(min_length=1)


class Jurisdiction(Strict):
    """The rules for the authorities of some countries: how their requests must reach the platform
    (`direct`, under an `executive_agreement`, or through `mlat`, mutual legal assistance, in which
    case only `direct_instruments` are accepted directly), which kinds of authority may issue which
    instruments, who notifies the person, and the preservation terms."""

    name: str = Field(min_length=1)
    countries: list[str]
    route: Literal["direct", "executive_agreement", "mlat"]
    route_source: str = Field(min_length=1)
    direct_instruments: list[str] = []
    issuers: list[IssuerGrant]
    notice: NoticeRule
    preservation: HoldTerms


class JurisdictionPolicy(Strict):
    high_risk: list[str]
    countries: list[Jurisdiction]
    default: Jurisdiction

    @field_validator("countries")
    @classmethod
    def _each_country_once(cls, jurisdictions: list[Jurisdiction]) -> list[Jurisdiction]:
        seen = [c for j in jurisdictions for c in j.countries]
        if len(seen) != len(set(seen)):
            raise ValueError("a country belongs to one jurisdiction only")
        return jurisdictions


class DeadlinePolicy(Strict):
    standard_hours: int = Field(ge=1)
    emergency_hours: int = Field(ge=1)


class EmergencyPolicy(Strict):
    confirmation_hours: int = Field(ge=1)
    confirmation_exempt_kinds: list[str]
    confirming_kinds: list[str]


class PreservationPolicy(Strict):
    max_extensions: int = Field(ge=0)


class NondisclosurePolicy(Strict):
    max_days: int = Field(ge=1)
    source: str


class NoticePolicy(Strict):
    """Who tells the person is set per jurisdiction; emergencies: nobody before the validation window ends."""

    emergency_source: str = Field(min_length=1)


class ReviewPolicy(Strict):
    approvals_required: int = Field(ge=1)
    single_reviewer_flags: list[str]
    supervisor_flags: list[str]


class Policy(Strict):
    version: str = Field(min_length=1)
    rules: list[RuleSpec]
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

    def jurisdiction(self, country: str | None) -> Jurisdiction:
        """The jurisdiction a country belongs to; the default one for any other (or an unknown) country."""
        for jurisdiction in self.jurisdictions.countries:
            if country in jurisdiction.countries:
                return jurisdiction
        return self.jurisdictions.default

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
# How often the policy file's mtime is looked at: a changed file applies within this long. current_policy()
# runs for every decision, and a stat per call was a measurable part of legal review's work per request.
RECHECK_S = 1.0
_checked: dict[str, tuple[float, Policy]] = {}  # the configured path -> when it was last looked at, its policy


def current_policy() -> Policy:
    """The policy in force: WARDEN_POLICY_FILE, else the shipped default (re-read when the file changes,
    looked at no more than every RECHECK_S).

    A file that stops parsing after the service started keeps the last good policy in force
    (and says so in the log) rather than dead-lettering every request; at startup it is fatal.
    """
    configured = os.environ.get(POLICY_FILE_ENV) or ""
    checked = _checked.get(configured)
    moment = time.monotonic()
    if checked is not None and moment - checked[0] < RECHECK_S:
        return checked[1]
    path = policy_path()
    try:
        policy = _load(path, path.stat().st_mtime)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        if path not in _last_good:
            raise
        log.error("policy file invalid, keeping the last good policy",
                  extra={"version": _last_good[path].version, "error_type": type(exc).__name__})
        policy = _last_good[path]
    else:
        _last_good[path] = policy
    _checked[configured] = (moment, policy)
    return policy
