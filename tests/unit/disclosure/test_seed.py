"""`warden seed`'s synthetic feed: deterministic, and valid by the contract."""
from __future__ import annotations

from datetime import datetime, timezone

from warden.cli.disclosure import synthetic_feed
from warden.contract.events import model_for

UNTIL = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_same_seed_same_feed_other_seed_other_feed():
    assert synthetic_feed(5, 50, 7, UNTIL) == synthetic_feed(5, 50, 7, UNTIL)
    assert synthetic_feed(5, 50, 7, UNTIL) != synthetic_feed(5, 50, 8, UNTIL)


def test_every_event_is_a_valid_subscriber_event():
    events, example = synthetic_feed(10, 200, 1, UNTIL)
    assert sum(t.endswith("session.observed.v1") for t, _ in events) == 200
    for event_type, data in events:
        model_for(event_type).model_validate(data)
    assert example["account_id"].startswith("seed1-acct-")
