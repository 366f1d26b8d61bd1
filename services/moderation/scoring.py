"""Scoring, trust, misuse and action rules: pure functions, no I/O.

A content item's score is the sum, over distinct reporters inside the sliding
window, of the reporter's weight times the reason's severity, plus what the
content's own bank matches add. The per-item state (`Reports`) maps reporter id
(or `bank:<id>`) -> [contribution, reported_at epoch, established]: adding a
reporter who is already there changes nothing, so replaying a report is harmless.

Report volume alone delists only with enough established trust behind it
(reporters who earned it from outcomes, trusted flaggers) and never in a burst of
unproven reporters (coordinated): those items go to humans instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from moderation.config import ModerationConfig

Reports = dict[str, list[float]]  # reporter_id -> [contribution, reported_at (epoch s), established (1 or 0)]
BANK = "bank:"  # a bank match on the content's facts sits in the window like one more reporter, under this prefix


class Action(str, Enum):
    record = "record"        # below the review threshold: wait for more
    review = "review"        # queue for a human
    delist = "delist"        # delist now (and queue for urgent human confirmation)


def reporter_weight(trust: float, trusted_flagger: bool, cfg: ModerationConfig) -> float:
    """Trusted flaggers weigh a fixed amount more than any ordinary reporter's trust."""
    return max(trust, cfg.trusted_flagger_weight) if trusted_flagger else trust


def contribution(reason: str, weight: float, cfg: ModerationConfig) -> float:
    return round(weight * cfg.severity.get(reason, cfg.severity.get("other", 1.0)), 4)


def is_established(trust: float, trusted_flagger: bool, cfg: ModerationConfig) -> bool:
    """Trust earned from outcomes (reporters start below it), or a trusted flagger's standing."""
    return trusted_flagger or trust >= cfg.established_trust


def add_report(reports: Reports, reporter_id: str, value: float, at: datetime,
               window_start: datetime, established: bool = True) -> Reports:
    """The item's reports with this one added; a reporter already counted inside the window adds nothing."""
    start = window_start.timestamp()
    kept = {r: v for r, v in reports.items() if v[1] >= start}
    if reporter_id not in kept:
        kept[reporter_id] = [value, at.timestamp(), 1.0 if established else 0.0]
    return kept


def window_score(reports: Reports, window_start: datetime) -> float:
    start = window_start.timestamp()
    return round(sum(v[0] for v in reports.values() if v[1] >= start), 4)


def window_start(now: datetime, cleared_at: datetime | None, cfg: ModerationConfig) -> datetime:
    """Reports older than the window, or older than the last human decision on the item, no longer count."""
    start = now - timedelta(hours=cfg.window_hours)
    return max(start, cleared_at) if cleared_at else start


def decide(score: float, high_severity_match: bool, cfg: ModerationConfig) -> Action:
    if high_severity_match or score >= cfg.delist_threshold:
        return Action.delist
    if score >= cfg.review_threshold:
        return Action.review
    return Action.record


@dataclass(frozen=True)
class Verdict:
    action: Action
    score: float
    established: float   # the part of the score from established reporters and the content's own matches
    coordinated: bool    # a burst of unproven reporters


def coordinated(reports: Reports, cfg: ModerationConfig) -> bool:
    """At least `burst_min_reporters` unproven (new, or never upheld) reporters within `burst_minutes`."""
    need = cfg.burst_min_reporters
    if len(reports) < need:  # the common case, one or two reports: no burst, nothing to sort
        return False
    times = sorted(v[1] for who, v in reports.items() if not who.startswith(BANK) and not v[2])
    span = cfg.burst_minutes * 60
    return any(times[i + need - 1] - times[i] <= span for i in range(len(times) - need + 1))


def judge(reports: Reports, window_start: datetime, high_severity_match: bool, cfg: ModerationConfig) -> Verdict:
    """What an item's window calls for. A high-severity match on the content's facts delists whoever reported it;
    report volume delists only with enough established trust and no coordinated burst, otherwise it is queued."""
    start = window_start.timestamp()
    live = {who: v for who, v in reports.items() if v[1] >= start}
    total = from_established = 0.0
    for value, _, established_reporter in live.values():
        total += value
        if established_reporter:
            from_established += value
    score, established = round(total, 4), round(from_established, 4)
    burst = coordinated(live, cfg)
    action = decide(score, high_severity_match, cfg)
    if action is Action.delist and not high_severity_match and (burst or established < cfg.min_established_score):
        action = Action.review
    if action is Action.record and burst:
        action = Action.review
    return Verdict(action, score, established, burst)


def adjust_trust(trust: float, upheld: bool, cfg: ModerationConfig) -> float:
    moved = trust + cfg.trust_uphold_step if upheld else trust - cfg.trust_reject_step
    return round(min(cfg.trust_max, max(cfg.trust_min, moved)), 4)


class MisuseStep(str, Enum):
    none = "none"
    warn = "warn"
    suspend = "suspend"


def misuse_step(unfounded: int, total: int, warned: bool, cfg: ModerationConfig) -> MisuseStep:
    """DSA Art. 23: judge by absolute count and share of manifestly unfounded reports; warn before suspending."""
    if total == 0 or unfounded < cfg.misuse_min_unfounded or unfounded / total < cfg.misuse_min_share:
        return MisuseStep.none
    return MisuseStep.suspend if warned else MisuseStep.warn


@dataclass(frozen=True)
class QueueRank:
    urgent: bool      # a high-severity match (child abuse, terrorism), delisted or not
    trusted: bool     # a trusted flagger reported it (DSA Art. 22 priority)
    score: float

    def priority(self) -> float:
        """Higher first: high-severity matches, then trusted flaggers, then by score."""
        return (2000.0 if self.urgent else 0.0) + (1000.0 if self.trusted else 0.0) + min(self.score, 999.0)
