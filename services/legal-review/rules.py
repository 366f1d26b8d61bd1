"""The legal analysis: pure rule functions over a request and what is known about it.

Each rule has a stable id (listed, described and sourced in policy.yaml), looks at the
`Facts` and the `Policy`, and answers passed, failed (a hard rule: the request is
rejected) or flagged (a human must decide). `assess` runs every rule and derives the
outcome, the granted scope (narrowed categories and period, or a hold) and the deadline.
No I/O here: handlers gather the facts, these functions decide.
"""
from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from warden.contract.envelope import EventRejected
from warden.contract.events import (
    AuthorityRegistered, InstrumentType, LegalRequest, Period, RequestReceived, UserNotice,
)
from warden.identifiers import case_id_for, normalise_suspect
from warden.signing import canonical

from legal_review.policy import Policy

Outcome = Literal["passed", "failed", "flagged"]
CaseStatus = Literal["approved", "rejected", "pending_review"]


@dataclass(frozen=True)
class EarlierHold:
    """The case an extension request names (same authority, its `request_id`).

    `chain_started_at`: when the first hold of the chain it belongs to was received (itself,
    unless it extends another); `chain_extensions`: the extensions already granted in that
    chain (its own depth in the chain plus the extensions of it).
    """

    case_id: str
    kind: str
    status: str
    hold_until: datetime | None
    extensions: int
    chain_started_at: datetime | None = None
    chain_extensions: int = 0
    suspect_key: str | None = None  # whose data it holds (suspect_key of its request)


@dataclass(frozen=True)
class SuspectHold:
    """An approved hold on the same suspect, running when the request was received."""

    authority_id: str
    started_at: datetime  # when the chain of holds it belongs to began
    hold_until: datetime


@dataclass(frozen=True)
class Facts:
    request: LegalRequest
    received_at: datetime
    authority: AuthorityRegistered | None
    earlier_hold: EarlierHold | None = None
    suspect_holds: tuple[SuspectHold, ...] = ()


class RuleResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    outcome: Outcome
    code: str
    message: str
    flag: str | None = None


class Assessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_version: str
    outcome: CaseStatus
    results: list[RuleResult]
    flags: list[str]
    kind: Literal["disclosure", "preservation"]
    emergency: bool
    granted_categories: list[str]
    refused_categories: list[str]
    period: Period | None
    hold_until: datetime | None
    deadline: datetime
    approvals_required: int
    supervisor_required: bool
    confirmation_due: datetime | None

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def flagged(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "flagged"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    code: str
    message: str
    flag: str | None = None


def passed(code: str, message: str) -> Verdict:
    return Verdict("passed", code, message)


def failed(code: str, message: str) -> Verdict:
    return Verdict("failed", code, message)


def flagged(code: str, message: str, flag: str) -> Verdict:
    return Verdict("flagged", code, message, flag)


RuleFunction = Callable[[Facts, Policy], RuleResult]
RULES: dict[str, RuleFunction] = {}


def rule(rule_id: str) -> Callable[[Callable[[Facts, Policy], Verdict]], RuleFunction]:
    """Register a rule under its stable id; the id names it in every decision."""
    def register(fn: Callable[[Facts, Policy], Verdict]) -> RuleFunction:
        def run(facts: Facts, policy: Policy) -> RuleResult:
            v = fn(facts, policy)
            return RuleResult(rule=rule_id, outcome=v.outcome, code=v.code, message=v.message, flag=v.flag)
        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        RULES[rule_id] = run
        return run
    return register


def check_policy(policy: Policy) -> None:
    """A policy must name every rule the engine has, and only those: no safeguard dropped silently."""
    listed = {r.id for r in policy.rules}
    unknown, missing = listed - RULES.keys(), RULES.keys() - listed
    if unknown or missing:
        raise ValueError(f"policy {policy.version}: unknown rules {sorted(unknown)}, missing rules {sorted(missing)}")


# --- facts derived from the request -----------------------------------------------------

def is_emergency(request: LegalRequest) -> bool:
    return request.emergency or request.instrument.type == InstrumentType.emergency_request


def is_preservation(request: LegalRequest) -> bool:
    return request.instrument.type == InstrumentType.preservation_request


def split_categories(request: LegalRequest, policy: Policy) -> tuple[list[str], list[str]]:
    """(granted, refused), each in request order, without duplicates."""
    granted: list[str] = []
    refused: list[str] = []
    for category in request.data_categories:
        target = granted if category in policy.data.grantable else refused
        if category not in target:
            target.append(category)
    return granted, refused


def add_months(moment: datetime, months: int) -> datetime:
    """`months` later, the day clamped to the month's end; datetime.max's year at the latest."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    if year > datetime.max.year:
        return datetime.max.replace(tzinfo=moment.tzinfo)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def retention_window(received_at: datetime, policy: Policy) -> tuple[datetime, datetime]:
    return received_at - timedelta(days=policy.period.retention_days), received_at


def oldest_reachable(facts: Facts, policy: Policy) -> datetime:
    """The oldest instant whose data the store still has: the retention window, reaching further back
    for data a running hold on the suspect kept from purging (what was in retention when it began)."""
    oldest, _ = retention_window(facts.received_at, policy)
    held = [h.started_at - timedelta(days=policy.period.retention_days) for h in facts.suspect_holds]
    return min([oldest, *held])


def granted_period(request: LegalRequest, received_at: datetime, policy: Policy,
                   oldest: datetime | None = None) -> Period | None:
    """The requested period narrowed to the retention window (from `oldest`, when a hold reaches further
    back); None when nothing is left."""
    window_start, newest = retention_window(received_at, policy)
    start, end = max(request.period.start, oldest or window_start), min(request.period.end, newest)
    return Period(start=start, end=end) if start < end else None


def hold_terms(country: str | None, policy: Policy):
    return policy.jurisdiction(country).preservation


def hold_chain_start(facts: Facts) -> datetime:
    """When the hold this request would give began: the first hold of the chain it extends, or the
    earliest hold of this authority on the suspect still running, or now."""
    starts = [facts.received_at]
    earlier = facts.earlier_hold
    if facts.request.extends_request_id and earlier and earlier.chain_started_at:
        starts.append(earlier.chain_started_at)
    starts += [h.started_at for h in facts.suspect_holds if h.authority_id == facts.request.authority_id]
    return min(starts)


def hold_limit(facts: Facts, policy: Policy) -> datetime:
    """The latest a hold on this suspect for this authority may run: initial period plus the extensions."""
    terms = hold_terms(facts.authority.country if facts.authority else None, policy)
    return hold_chain_start(facts) + timedelta(
        days=terms.hold_days + policy.preservation.max_extensions * terms.extension_days)


def hold_until(facts: Facts, policy: Policy) -> datetime | None:
    if not is_preservation(facts.request):
        return None
    terms = hold_terms(facts.authority.country if facts.authority else None, policy)
    earlier = facts.earlier_hold
    if facts.request.extends_request_id and earlier and earlier.hold_until:
        wanted = earlier.hold_until + timedelta(days=terms.extension_days)
    else:
        wanted = facts.received_at + timedelta(days=terms.hold_days)
    return min(wanted, hold_limit(facts, policy))


def suspect_key(request: LegalRequest) -> str:
    """Counts distinct users in reports without keeping who they are."""
    return hashlib.sha256(canonical(request.suspect.model_dump(mode="json"))).hexdigest()


def _short(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- the rules --------------------------------------------------------------------------

@rule("authority.registered")
def authority_registered(facts: Facts, policy: Policy) -> Verdict:
    """The authority is registered and active."""
    authority = facts.authority
    if authority is None:
        return flagged("authority_unknown", "the authority is not in legal review's registry copy yet", "authority_unknown")
    if authority.status != "active":
        return failed("authority_revoked", "the authority's registration is revoked")
    return passed("authority_active", f"registered {authority.kind.value} in {authority.country}")


@rule("instrument.judicial")
def instrument_judicial(facts: Facts, policy: Policy) -> Verdict:
    """A subpoena is not a judicial order."""
    kind = facts.request.instrument.type.value
    if kind in policy.non_judicial_instruments:
        return failed("not_judicial_order", f"a {kind} is not a judicial order; the platform requires one")
    return passed("judicial_instrument", f"{kind} is accepted")


@rule("authority.competent")
def authority_competent(facts: Facts, policy: Policy) -> Verdict:
    """The authority's kind may issue this instrument in its jurisdiction."""
    authority = facts.authority
    instrument = facts.request.instrument.type.value
    if authority is None:
        return flagged("issuer_unverifiable", "the authority's kind is unknown", "authority_unknown")
    jurisdiction = policy.jurisdiction(authority.country)
    for grant in jurisdiction.issuers:
        if authority.kind.value in grant.kinds and instrument in grant.instruments:
            return passed("issuer_competent", f"a {authority.kind.value} may issue a {instrument} ({grant.source})")
    return failed("issuer_not_competent",
                  f"a {authority.kind.value} in {authority.country} may not issue a {instrument}")


@rule("instrument.issued")
def instrument_issued(facts: Facts, policy: Policy) -> Verdict:
    """issued_at is not in the future."""
    skew = timedelta(minutes=policy.instrument.clock_skew_minutes)
    if facts.request.instrument.issued_at > facts.received_at + skew:
        return failed("issued_in_future", "the instrument's issued_at is after the request was received")
    return passed("issued", "the instrument was issued before the request")


@rule("instrument.in_force")
def instrument_in_force(facts: Facts, policy: Policy) -> Verdict:
    """The instrument has not expired."""
    expires_at = facts.request.instrument.expires_at
    if expires_at is not None and expires_at <= facts.received_at:
        return failed("instrument_expired", "the instrument had expired when the request was received")
    return passed("in_force", "the instrument is in force")


@rule("offense.criminal_tos")
def offense_criminal_tos(facts: Facts, policy: Policy) -> Verdict:
    """The offense is a criminal category the terms of service prohibit."""
    category = facts.request.offense.category.value
    if category in policy.offenses.criminal or category in policy.offenses.speech:
        return passed("criminal_offense", f"{category} is a criminal offense the terms of service prohibit")
    if category in policy.offenses.needs_review:
        return flagged("offense_unlisted", f"whether {category} is covered needs a human", "offense_review")
    return failed("offense_not_covered", f"{category} is not an offense the policy covers")


@rule("offense.speech_review")
def offense_speech_review(facts: Facts, policy: Policy) -> Verdict:
    """Speech offenses go to human review with a human-rights flag."""
    category = facts.request.offense.category.value
    if category in policy.offenses.speech:
        return flagged("speech_offense", f"{category} is a speech offense: human-rights review", "human_rights")
    return passed("not_speech", "not a speech offense")


@rule("data.grantable")
def data_grantable(facts: Facts, policy: Policy) -> Verdict:
    """Only grantable categories are granted; the rest is refused by name."""
    granted, refused = split_categories(facts.request, policy)
    refused_text = ", ".join(_short(c) for c in refused)
    if not granted:
        return failed("nothing_grantable", f"none of the requested categories can be disclosed: {refused_text}")
    if refused:
        return passed("categories_narrowed", f"granted {', '.join(granted)}; refused {refused_text}")
    return passed("categories_granted", f"granted {', '.join(granted)}")


@rule("period.well_formed")
def period_well_formed(facts: Facts, policy: Policy) -> Verdict:
    """start < end, and the period does not start after receipt."""
    period = facts.request.period
    if period.start >= period.end:
        return failed("period_malformed", "the period's start is not before its end")
    if period.start > facts.received_at:
        return failed("period_in_future", "the period starts after the request was received")
    return passed("period_ok", "the period is well-formed")


@rule("period.max_length")
def period_max_length(facts: Facts, policy: Policy) -> Verdict:
    """At most `max_months` months."""
    period, months = facts.request.period, policy.period.max_months
    if period.end > add_months(period.start, months):
        return failed("period_too_long", f"the period is longer than {months} months")
    return passed("period_within_limit", f"the period is at most {months} months")


@rule("period.retention")
def period_retention(facts: Facts, policy: Policy) -> Verdict:
    """Narrowed to the retention window."""
    request = facts.request
    if request.period.start >= request.period.end:
        return passed("period_not_applicable", "see period.well_formed")
    oldest = oldest_reachable(facts, policy)
    granted = granted_period(request, facts.received_at, policy, oldest)
    if granted is None:
        return failed("period_outside_retention",
                      f"no part of the period is within the {policy.period.retention_days}-day retention window"
                      " or data kept by a hold on the suspect")
    window_start, _ = retention_window(facts.received_at, policy)
    where = "retention window and data kept by a hold" if oldest < window_start else "retention window"
    if granted.start != request.period.start or granted.end != request.period.end:
        return passed("period_narrowed",
                      f"narrowed to {granted.start.isoformat()} .. {granted.end.isoformat()} ({where})")
    if granted.start < window_start:
        return passed("period_within_hold", "the period reaches data a hold on the suspect kept from purging")
    return passed("period_in_retention", "the period is within the retention window")


@rule("jurisdiction.route")
def jurisdiction_route(facts: Facts, policy: Policy) -> Verdict:
    """The request came the way the authority's jurisdiction must take (direct, agreement, or MLAT)."""
    if facts.authority is None:
        return flagged("route_unknown", "the authority's country is unknown, and so the route it must take",
                       "authority_unknown")
    country, instrument = facts.authority.country, facts.request.instrument.type.value
    jurisdiction = policy.jurisdiction(country)
    if jurisdiction.route == "mlat" and instrument not in jurisdiction.direct_instruments:
        return failed("mlat_required", f"requests from {country} reach the platform through mutual legal "
                                       f"assistance, not directly ({jurisdiction.route_source})")
    if jurisdiction.route == "mlat":
        return passed("direct_exception", f"a {instrument} from {country} is accepted directly")
    if jurisdiction.route == "executive_agreement":
        return passed("executive_agreement", f"{country}: {jurisdiction.route_source}")
    return passed("direct_route", f"{country} ({jurisdiction.name}): {jurisdiction.route_source}")


@rule("jurisdiction.high_risk")
def jurisdiction_high_risk(facts: Facts, policy: Policy) -> Verdict:
    """High-risk jurisdictions need two reviewers."""
    if facts.authority is None:
        return flagged("jurisdiction_unknown", "the authority's country is unknown", "authority_unknown")
    country = facts.authority.country
    if country in policy.jurisdictions.high_risk:
        return flagged("high_risk_jurisdiction", f"{country} is a high-risk jurisdiction: two reviewers",
                       "high_risk_jurisdiction")
    return passed("jurisdiction_ok", f"{country} is not listed as high-risk")


@rule("emergency.justified")
def emergency_justified(facts: Facts, policy: Policy) -> Verdict:
    """An emergency carries a justification and is decided first by a human."""
    request = facts.request
    if not is_emergency(request):
        return passed("not_emergency", "not an emergency request")
    if not (request.emergency_justification or "").strip():
        return failed("emergency_unjustified", "an emergency request must state the danger to life or of serious injury")
    return flagged("emergency", f"emergency: decide within {policy.deadlines.emergency_hours} h; one reviewer may approve",
                   "emergency")


@rule("preservation.hold")
def preservation_hold(facts: Facts, policy: Policy) -> Verdict:
    """Preservation is a hold, 60 days EU / 90 days otherwise, extendable once."""
    request = facts.request
    if not is_preservation(request):
        return passed("not_preservation", "not a preservation request")
    terms = hold_terms(facts.authority.country if facts.authority else None, policy)
    if (limit_reached := _hold_limit_reached(facts, policy)) is not None:
        return limit_reached
    if not request.extends_request_id:
        return passed("hold_granted", f"hold of {terms.hold_days} days at most, no data disclosed")
    earlier = facts.earlier_hold
    if earlier is None:
        return failed("extension_target_unknown", "the request to extend is not known for this authority")
    if earlier.kind != "preservation" or earlier.status != "approved" or earlier.hold_until is None:
        return failed("extension_target_not_held", "the request to extend is not an approved preservation hold")
    if earlier.suspect_key is not None and earlier.suspect_key != suspect_key(request):
        return failed("extension_other_suspect", "the request to extend holds another suspect's data")
    used = max(earlier.extensions, earlier.chain_extensions)
    if used >= policy.preservation.max_extensions:
        return failed("extension_exhausted",
                      f"the hold was already extended {used} time(s); the limit is "
                      f"{policy.preservation.max_extensions}")
    if earlier.hold_until <= facts.received_at:
        return failed("extension_target_expired", "the hold to extend has already ended")
    return passed("hold_extended", f"hold extended by {terms.extension_days} days")


def _hold_limit_reached(facts: Facts, policy: Policy) -> Verdict | None:
    limit = hold_limit(facts, policy)
    if limit <= facts.received_at:
        return failed("hold_limit_reached", "the hold on this suspect already ran for the initial period and "
                                            "its extension")
    return None


def user_notice(country: str | None, emergency: bool, received_at: datetime, policy: Policy) -> UserNotice:
    """The notice rule of the authority's jurisdiction, as the approval carries it to disclosure."""
    terms = policy.jurisdiction(country).notice
    not_before = received_at + timedelta(hours=policy.emergency.confirmation_hours) if emergency else None
    source = f"{terms.source}; {policy.notices.emergency_source}" if emergency else terms.source
    return UserNotice(by=terms.by, not_before=not_before, rule="notice.jurisdiction", source=source[:256])


@rule("notice.jurisdiction")
def notice_jurisdiction(facts: Facts, policy: Policy) -> Verdict:
    """Who notifies the person; never a reason to refuse."""
    if facts.authority is None:
        return flagged("notice_jurisdiction_unknown", "the authority's country is unknown, and so who notifies",
                       "authority_unknown")
    notice = user_notice(facts.authority.country if facts.authority else None, is_emergency(facts.request),
                         facts.received_at, policy)
    who = "the issuing authority informs the person" if notice.by == "authority" else "the platform notifies"
    when = f", not before {notice.not_before.isoformat()}" if notice.not_before else ""
    return passed(f"notice_by_{notice.by}", f"{who}{when} ({notice.source})")


@rule("nondisclosure.bounded")
def nondisclosure_bounded(facts: Facts, policy: Policy) -> Verdict:
    """A non-disclosure date beyond `nondisclosure.max_days` needs reviewers."""
    until = facts.request.nondisclosure_until
    if until is None:
        return passed("no_nondisclosure", "no non-disclosure date")
    limit_days = policy.nondisclosure.max_days
    if (until - facts.received_at.date()).days > limit_days:
        return flagged("nondisclosure_too_far",
                       f"the non-disclosure date is more than {limit_days} days away: reviewers decide",
                       "nondisclosure_review")
    return passed("nondisclosure_bounded", f"non-disclosure within {limit_days} days")


# --- the assessment ---------------------------------------------------------------------

def assess(facts: Facts, policy: Policy) -> Assessment:
    results = [RULES[spec.id](facts, policy) for spec in policy.rules]
    failures = [r for r in results if r.outcome == "failed"]
    flags = sorted({r.flag for r in results if r.outcome == "flagged" and r.flag})
    outcome: CaseStatus = "rejected" if failures else ("pending_review" if flags else "approved")
    request = facts.request
    emergency = is_emergency(request)
    granted, refused = split_categories(request, policy)
    hours = policy.deadlines.emergency_hours if emergency else policy.deadlines.standard_hours
    approvals = 0
    if outcome == "pending_review":
        single = all(f in policy.review.single_reviewer_flags for f in flags)
        approvals = 1 if single else policy.review.approvals_required
    needs_confirmation = emergency and (
        facts.authority is None or facts.authority.kind.value not in policy.emergency.confirmation_exempt_kinds)
    return Assessment(
        policy_version=policy.version,
        outcome=outcome,
        results=results,
        flags=flags,
        kind="preservation" if is_preservation(request) else "disclosure",
        emergency=emergency,
        granted_categories=granted,
        refused_categories=refused,
        period=granted_period(request, facts.received_at, policy, oldest_reachable(facts, policy)),
        hold_until=hold_until(facts, policy) if outcome != "rejected" else None,
        deadline=facts.received_at + timedelta(hours=hours),
        approvals_required=approvals,
        supervisor_required=any(f in policy.review.supervisor_flags for f in flags),
        confirmation_due=(facts.received_at + timedelta(hours=policy.emergency.confirmation_hours)
                          if needs_confirmation else None),
    )


def may_confirm_emergency(confirming: Assessment | str, authority: AuthorityRegistered | None, policy: Policy) -> bool:
    """An approved judicial order that names an emergency request confirms it (Art. 4(5), 48 h); one still
    pending review confirms nothing until it is approved. `confirming`: its assessment or its case status."""
    outcome = confirming if isinstance(confirming, str) else confirming.outcome
    return (outcome == "approved" and authority is not None
            and authority.kind.value in policy.emergency.confirming_kinds)


def expired_at_decision(request: LegalRequest, at: datetime) -> RuleResult | None:
    """The instrument must still be in force when the case is decided: the failed rule when it is not."""
    expires_at = request.instrument.expires_at
    if expires_at is not None and expires_at <= at:
        return RuleResult(rule="instrument.in_force", outcome="failed", code="instrument_expired",
                          message="the instrument expired before the decision")
    return None


def provenance_mismatch(received: RequestReceived, submitted: LegalRequest) -> str | None:
    """What in a received event departs from the request as the authority submitted it, or None.

    The normalised copy is intake's work: it must be the submitted request with its suspect
    normalised, under the case id derived from the request, and nothing else.
    """
    if received.case_id != case_id_for(submitted.authority_id, submitted.request_id):
        return "case_id is not the one derived from the submitted request"
    try:
        expected = submitted.model_copy(update={"suspect": normalise_suspect(submitted.suspect)})
    except EventRejected as exc:
        return f"submitted request: {exc.error}"
    if received.request != expected:
        differing = sorted(name for name in LegalRequest.model_fields
                           if getattr(received.request, name) != getattr(expected, name))
        return f"normalised request differs from the submitted one in: {', '.join(differing)}"
    return None
