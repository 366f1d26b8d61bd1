"""Scoring, trust, misuse and action rules: pure functions, no I/O.

A content item's score is the sum, over distinct reporters inside the sliding
window, of the reporter's weight times the reason's severity, plus what the
content's own bank matches add. The per-item state (`Reports`) maps reporter id
(or `bank(<id>)`) -> [contribution, reported_at epoch, established]: adding a
reporter who is already there changes nothing, so replaying a report is harmless.
A bank match's key is a tuple, so no reporter id, whatever it spells, passes for one.

Report volume alone delists only with enough established trust behind it
(reporters who earned it from outcomes, trusted flaggers) and never in a burst of
unproven reporters (coordinated): those items go to humans instead.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from moderation.config import ModerationConfig

BankKey = tuple[str, str]
# reporter_id, or a bank match's key -> [contribution, reported_at (epoch s), established (1 or 0)]
Reports = dict[str | BankKey, list[float]]


def bank(bank_id: str) -> BankKey:
    """A bank match on the content's facts sits in the window like one more reporter, under this key."""
    return ("bank", bank_id)


def is_bank(who: str | BankKey) -> bool:
    return type(who) is tuple


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


def add_report(reports: Reports, reporter_id: str | BankKey, value: float, at: datetime,
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


@dataclass(slots=True)  # a value, never changed; built per report, so not frozen (slower to build)
class Verdict:
    action: Action
    score: float
    established: float   # the part of the score from established reporters and the content's own matches
    coordinated: bool    # a burst of unproven reporters


def coordinated(reports: Reports, cfg: ModerationConfig) -> bool:
    """At least `burst_min_reporters` unproven (new, or never upheld) reporters within `burst_minutes`."""
    return _burst(_unproven_times(reports), cfg)


def _unproven_times(reports: Reports) -> list[float]:
    """The report times of the unproven reporters (bank matches are none), in order."""
    return sorted(v[1] for who, v in reports.items() if not is_bank(who) and not v[2])


def _burst(times: list[float], cfg: ModerationConfig, around: int | None = None) -> bool:
    """Whether `need` of the sorted `times` fall within the burst span; only the runs holding index `around`
    when given (the one time just added)."""
    need, span = cfg.burst_min_reporters, cfg.burst_minutes * 60
    first, last = 0, len(times) - need
    if around is not None:
        first, last = max(first, around - need + 1), min(last, around)
    return any(times[i + need - 1] - times[i] <= span for i in range(first, last + 1))


def judge(reports: Reports, window_start: datetime, high_severity_match: bool, cfg: ModerationConfig) -> Verdict:
    """What an item's window calls for. A high-severity match on the content's facts delists whoever reported it;
    report volume delists only with enough established trust and no coordinated burst, otherwise it is queued."""
    return Window(reports, window_start, cfg).verdict(high_severity_match)


class Window:
    """An item's window while one call folds reports into it: the entries inside it, and what `judge` needs
    (the sums, the unproven reporters' times in order, whether they burst) kept up to date report by report.

    Folding n reports into a window of w entries costs O(n log w), not O(n·w log w) as judging the whole
    window after each report would: a brigade of fresh accounts on one item, queued and never delisted by
    volume, must not slow moderation down for everyone. `add` leaves what `add_report` leaves, and the
    verdict is the one `judge` gives on that (a Hypothesis test holds them to it).
    """

    __slots__ = ("start", "entries", "total", "established", "unproven", "burst", "stale", "banks", "_cfg")

    def __init__(self, entries: Reports, window_start: datetime, cfg: ModerationConfig):
        self.start = window_start.timestamp()
        self._cfg = cfg
        self.stale: str | None = None  # the last reporter added with a report older than the window
        self.total = self.established = 0.0
        self.burst = False
        if not entries:  # most items of a call: nothing reported inside the window yet
            self.entries, self.unproven, self.banks = {}, [], []
            return
        self.entries = {who: v for who, v in entries.items() if v[1] >= self.start}
        for value, _, established_reporter in self.entries.values():  # in order: the sums of `judge`, bit for bit
            self.total += value
            if established_reporter:
                self.established += value
        self.unproven = _unproven_times(self.entries)
        self.banks = sorted(who[1] for who in self.entries if is_bank(who))  # their ids
        self.burst = len(self.unproven) >= cfg.burst_min_reporters and _burst(self.unproven, cfg)

    def add(self, reporter_id: str | BankKey, value: float, at: datetime, established: bool) -> bool:
        """Count this report unless its reporter is already counted (as `add_report`); whether the reporter
        was there before it (counted, or the last one added out of the window)."""
        there = reporter_id in self.entries or reporter_id == self.stale
        self.stale = None
        if reporter_id in self.entries:
            return there
        moment = at.timestamp()
        if moment < self.start:
            self.stale = reporter_id
            return there
        self.entries[reporter_id] = [value, moment, 1.0 if established else 0.0]
        self.total += value
        if is_bank(reporter_id):
            bisect.insort(self.banks, reporter_id[1])
        if established:
            self.established += value
        elif not is_bank(reporter_id):
            index = bisect.bisect_right(self.unproven, moment)
            self.unproven.insert(index, moment)
            # Another time only brings times closer together: a burst found stays one.
            self.burst = self.burst or (len(self.unproven) >= self._cfg.burst_min_reporters
                                        and _burst(self.unproven, self._cfg, around=index))
        return there

    def quiet(self) -> bool:
        """Whether the window, with no high-severity match, calls for nothing at all: `verdict(False)` would
        record, and no bank matched (most items reported once). Cheaper than building the verdict."""
        cfg = self._cfg
        score = round(self.total, 4)
        return not self.burst and not self.banks and score < cfg.review_threshold and score < cfg.delist_threshold

    def verdict(self, high_severity_match: bool) -> Verdict:
        cfg = self._cfg
        score, established = round(self.total, 4), round(self.established, 4)
        action = decide(score, high_severity_match, cfg)
        if action is Action.delist and not high_severity_match and (self.burst or
                                                                     established < cfg.min_established_score):
            action = Action.review
        if action is Action.record and self.burst:
            action = Action.review
        return Verdict(action, score, established, self.burst)


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


@dataclass(slots=True)  # a value, never changed; built per report, so not frozen (slower to build)
class QueueRank:
    urgent: bool      # a high-severity match (child abuse, terrorism), delisted or not
    trusted: bool     # a trusted flagger reported it (DSA Art. 22 priority)
    score: float

    def priority(self) -> float:
        """Higher first: high-severity matches, then trusted flaggers, then by score."""
        return (2000.0 if self.urgent else 0.0) + (1000.0 if self.trusted else 0.0) + min(self.score, 999.0)
