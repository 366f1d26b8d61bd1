"""The subscriber store's domain rules: pure functions, no I/O.

Identifiers (phone numbers, usernames) are kept as change points: from
`changed_at` the account held the value (None: none) until its next change
point. Intervals are derived here, so the store never depends on event order.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from warden.contract.envelope import EventRejected


@dataclass(frozen=True)
class Change:
    """`account_id` held `value` (None: nothing) from `changed_at` on."""

    account_id: str
    changed_at: datetime
    value: str | None


@dataclass(frozen=True)
class Held:
    """`account_id` held `value` over [start, end); end None: still holds it."""

    account_id: str
    value: str
    start: datetime
    end: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when any instant of [self.start, self.end) lies in [start, end]."""
        return self.start <= end and (self.end is None or self.end > start)


def held_intervals(changes: Iterable[Change]) -> list[Held]:
    """Per account, consecutive change points with the same value merge into one interval."""
    by_account: dict[str, list[Change]] = {}
    for change in changes:
        by_account.setdefault(change.account_id, []).append(change)
    intervals: list[Held] = []
    for account_id, points in by_account.items():
        points.sort(key=lambda c: c.changed_at)
        current: Change | None = None
        for point in points:
            if current is not None and point.value == current.value:
                continue
            if current is not None and current.value is not None:
                intervals.append(Held(account_id, current.value, current.changed_at, point.changed_at))
            current = point
        if current is not None and current.value is not None:
            intervals.append(Held(account_id, current.value, current.changed_at, None))
    return intervals


def holders_during(changes: Iterable[Change], value: str, start: datetime, end: datetime) -> set[str]:
    """The accounts that held `value` at some instant of [start, end], from their change points
    (whole histories: where an interval ends is the account's next change point, whatever its value)."""
    return {h.account_id for h in held_intervals(changes) if h.value == value and h.overlaps(start, end)}


def latest_per_account(updates: Iterable[tuple[str, datetime, object]]) -> list[tuple[str, datetime, object]]:
    """(account_id, updated_at, state) -> each account's latest; of equal times the later in the feed wins,
    as applying the updates one by one (the newer or equal replaces) would leave it."""
    latest: dict[str, tuple[str, datetime, object]] = {}
    for update in updates:
        held = latest.get(update[0])
        if held is None or held[1] <= update[1]:
            latest[update[0]] = update
    return list(latest.values())


def thin_changes(changes: Iterable[Change]) -> list[Change]:
    """A batch's change points without those that repeat the value of the account's point just before
    in the batch: storing them would derive the same intervals (held_intervals merges them)."""
    kept: list[Change] = []
    last: dict[str, Change] = {}
    for change in sorted(changes, key=lambda c: (c.account_id, c.changed_at)):
        before = last.get(change.account_id)
        if before is None or before.value != change.value:
            kept.append(change)
        last[change.account_id] = change
    return kept


def normalise_ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise EventRejected("invalid_data", "ip is not an IPv4 or IPv6 address") from None


def resolve_account(candidates: dict[str, set[str]]) -> tuple[str | None, str]:
    """The one account every given identifier points to, or None with a reason code.

    `candidates` maps each identifier the decision names (account_id, username,
    phone_number) to the accounts it designates. Identifiers that disagree designate
    nobody: disclosing on a guess would disclose someone else's data.
    """
    if not candidates:
        return None, "suspect_not_found"
    common: set[str] | None = None
    for accounts in candidates.values():
        common = set(accounts) if common is None else common & accounts
    if not common:
        return None, "suspect_not_found"
    if len(common) > 1:
        return None, "suspect_ambiguous"
    return next(iter(common)), ""


LATEST = datetime.max.replace(tzinfo=timezone.utc)


def notice_due_at(disclosed_at: datetime, nondisclosure_until: date | None,
                  not_before: datetime | None = None) -> datetime:
    """At once, or the first instant after `nondisclosure_until` (UTC) has passed, and not before
    `not_before`. A date at the end of the calendar gives its last instant: never an overflow."""
    due = disclosed_at if not_before is None else max(disclosed_at, not_before)
    if nondisclosure_until is None:
        return due
    if nondisclosure_until >= date.max:
        return LATEST
    lifted = datetime.combine(nondisclosure_until + timedelta(days=1), time.min, tzinfo=timezone.utc)
    return max(due, lifted)


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)
