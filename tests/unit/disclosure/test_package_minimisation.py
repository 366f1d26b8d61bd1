"""Minimisation, proved over random subscriber histories and random grants (hypothesis).

The builder gets every account's data and data outside the period; whatever it
gets, the package holds only granted categories, only the suspect's data, only
what falls inside the period, and all of that.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure.package import CATEGORY_FIELDS, Session, build_package, is_empty, redact
from disclosure.subscribers import Change
from warden.contract.events import RequestApproved

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
ACCOUNTS = ["acct-a", "acct-b", "acct-c"]
PHONES = ["+33612345001", "+33612345002", "+447700900003", None]
IPS = ["203.0.113.1", "203.0.113.2", "198.51.100.7", "2001:db8::1"]
ENVELOPE_FIELDS = {"case_id", "request_id", "authority_id", "account_id", "period", "generated_at", "nonce"}
NONCE = bytes(range(32))

moments = st.integers(min_value=0, max_value=2000).map(lambda h: BASE + timedelta(hours=h))
changes = st.lists(st.builds(Change, st.sampled_from(ACCOUNTS), moments, st.sampled_from(PHONES)), max_size=12)
sessions = st.lists(st.builds(Session, st.sampled_from(ACCOUNTS), st.sampled_from(IPS), moments), max_size=40)
grants = st.lists(st.sampled_from(["ip_addresses", "phone_number", "email", "content", "location"]),
                  min_size=1, max_size=4, unique=True)


@st.composite
def periods(draw):
    start, end = sorted([draw(moments), draw(moments)])
    return start, end


def decision(categories: list[str], start: datetime, end: datetime) -> RequestApproved:
    return RequestApproved(
        case_id="case-1", request_id="REQ-1", authority_id="auth-1", suspect={"account_id": ACCOUNTS[0]},
        kind="disclosure", data_categories=categories, period={"start": start, "end": end},
        policy_rules=[], decided_by=["policy"])


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def number_at(history: list[Change], account: str, moment: datetime) -> str | None:
    """Independent oracle: the value of the account's last change point at or before `moment`."""
    before = [c for c in history if c.account_id == account and c.changed_at <= moment]
    return max(before, key=lambda c: c.changed_at).value if before else None


def distinct_points(history: list[Change], account: str) -> list[Change]:
    # Two change points of one account at the same instant are ambiguous; the store keys them apart.
    seen: dict[datetime, Change] = {}
    for c in history:
        if c.account_id == account:
            seen.setdefault(c.changed_at, c)
    return list(seen.values())


@settings(max_examples=300, deadline=None)
@given(history=changes, observed=sessions, categories=grants, period=periods(),
       suspect=st.sampled_from(ACCOUNTS))
def test_package_holds_only_granted_data_of_the_suspect_inside_the_period(history, observed, categories,
                                                                          period, suspect):
    start, end = period
    history = [c for a in ACCOUNTS for c in distinct_points(history, a)]
    package = build_package(decision(categories, start, end), suspect, history, observed, BASE, NONCE)

    # Only granted categories, and every granted one that can be granted.
    granted_fields = {CATEGORY_FIELDS[c] for c in categories if c in CATEGORY_FIELDS}
    assert set(package) == ENVELOPE_FIELDS | granted_fields
    assert package["account_id"] == suspect
    assert base64.b64decode(package["nonce"], validate=True) == NONCE

    if "ip_addresses" in granted_fields:
        inside = [s for s in observed if s.account_id == suspect and start <= s.observed_at <= end]
        assert {e["ip"] for e in package["ip_addresses"]} == {s.ip for s in inside}
        for entry in package["ip_addresses"]:
            mine = [s.observed_at for s in inside if s.ip == entry["ip"]]
            assert entry["count"] == len(mine)
            assert parse(entry["first_seen"]) == min(mine) and parse(entry["last_seen"]) == max(mine)
            assert start <= parse(entry["first_seen"]) <= parse(entry["last_seen"]) <= end

    if "phone_numbers" in granted_fields:
        for entry in package["phone_numbers"]:
            held_from, held_to = parse(entry["from"]), parse(entry["to"])
            assert start <= held_from <= held_to <= end
            # The suspect held exactly this number over the whole reported interval.
            assert number_at(history, suspect, held_from) == entry["phone_number"]
            inner = [c.changed_at for c in history if c.account_id == suspect and held_from < c.changed_at < held_to]
            assert all(number_at(history, suspect, t) == entry["phone_number"] for t in inner)
        # Complete: any number the suspect held at an instant of the period is reported for it.
        instants = [start] + [c.changed_at for c in history if c.account_id == suspect and start <= c.changed_at <= end]
        for t in instants:
            held = number_at(history, suspect, t)
            if held is not None:
                assert any(e["phone_number"] == held and parse(e["from"]) <= t <= parse(e["to"])
                           for e in package["phone_numbers"])

    view = redact(package)
    assert view.ip_address_count == len(package.get("ip_addresses", []))
    assert not any(ip in repr(view) for ip in IPS)
    assert not any(p and p in repr(view) for p in PHONES)
    assert is_empty(package) == (not package.get("ip_addresses") and not package.get("phone_numbers"))
