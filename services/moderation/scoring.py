"""Scoring, trust, misuse and action rules: pure functions, no I/O.

A content item's score is the sum, over distinct reporters inside the sliding
window, of the reporter's weight times the reason's severity. The per-item
state (`Reports`) maps reporter id -> (contribution, reported_at epoch): adding a
reporter who is already there changes nothing, so replaying a report is harmless.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from moderation.config import ModerationConfig

Reports = dict[str, list[float]]  # reporter_id -> [contribution, reported_at (epoch s)]


class Action(str, Enum):
    record = "record"        # below the review threshold: wait for more
    review = "review"        # queue for a human
    delist = "delist"        # delist now (and queue for urgent human confirmation)


def reporter_weight(trust: float, trusted_flagger: bool, cfg: ModerationConfig) -> float:
    """Trusted flaggers weigh a fixed amount more than any ordinary reporter's trust."""
    return max(trust, cfg.trusted_flagger_weight) if trusted_flagger else trust


def contribution(reason: str, weight: float, cfg: ModerationConfig) -> float:
    return round(weight * cfg.severity.get(reason, cfg.severity.get("other", 1.0)), 4)


def add_report(reports: Reports, reporter_id: str, value: float, at: datetime,
               window_start: datetime) -> Reports:
    """The item's reports with this one added; a reporter already counted inside the window adds nothing."""
    start = window_start.timestamp()
    kept = {r: v for r, v in reports.items() if v[1] >= start}
    if reporter_id not in kept:
        kept[reporter_id] = [value, at.timestamp()]
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
    urgent: bool      # a high-severity automated match waiting for human confirmation
    trusted: bool     # a trusted flagger reported it (DSA Art. 22 priority)
    score: float

    def priority(self) -> float:
        """Higher first: urgent, then trusted flaggers, then by score."""
        return (2000.0 if self.urgent else 0.0) + (1000.0 if self.trusted else 0.0) + min(self.score, 999.0)
