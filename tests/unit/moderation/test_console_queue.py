"""The queue's filters as the console reads them from forms and links, and time in queue and SLA as shown."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from moderation.config import ModerationConfig
from moderation.console.routes import sla, waited
from moderation.queues import Filters, decode_cursor, where

AT = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def test_unknown_or_hostile_form_values_fall_back_to_defaults():
    f = Filters.parse({"sort": "priority; DROP TABLE queue", "size": "100000", "status": "everything",
                       "severity": "extreme", "reason": "x" * 500})
    assert (f.sort, f.size, f.status, f.severity, len(f.reason)) == ("severity", 50, "", "", 40)


def test_values_are_parameters_never_sql():
    clause, args = where(Filters(reason="spam' OR '1'='1", search="acc-1", status="mine"), "maria", AT)
    assert "spam" not in clause and "acc-1" not in clause and "maria" not in clause
    assert args == ["spam' OR '1'='1", AT, "maria", "acc-1"]


def test_a_damaged_cursor_is_the_first_page():
    assert decode_cursor("not base64 json") is None and decode_cursor(None) is None
    with_nul = base64.urlsafe_b64encode(json.dumps([1, "2026-01-01T00:00:00+00:00", "a\x00b"]).encode()).decode()
    assert decode_cursor(with_nul) is None


def test_a_filter_holding_a_nul_is_no_filter():
    """PostgreSQL text holds no NUL: such a value could match nothing, and sent as a parameter it is an error."""
    f = Filters.parse({"reason": "spam\x00", "surface": "\x00", "language": "e\x00n", "search": "acc\x00"})
    assert (f.reason, f.surface, f.language, f.search) == ("", "", "", "")


def test_time_in_queue():
    assert waited(AT - timedelta(minutes=5), AT) == "5 min"
    assert waited(AT - timedelta(hours=3, minutes=5), AT) == "3 h 05 min"
    assert waited(AT - timedelta(days=2, hours=4), AT) == "2 d 4 h"
    assert waited(AT + timedelta(minutes=1), AT) == "0 min"


def test_sla_left_and_breached_by_severity():
    cfg = ModerationConfig(sla_hours_high=1, sla_hours_normal=24)
    assert sla(AT - timedelta(minutes=20), True, AT, cfg) == ("due in 40 min", False)
    assert sla(AT - timedelta(hours=3, minutes=5), True, AT, cfg) == ("past SLA by 2 h 05 min", True)
    assert sla(AT - timedelta(hours=3, minutes=5), False, AT, cfg) == ("due in 20 h 55 min", False)
    assert sla(AT - timedelta(hours=24), False, AT, cfg) == ("past SLA by 0 min", True)


def test_a_media_viewer_is_an_http_url_template_naming_the_media():
    cfg = ModerationConfig(media_url="https://media.example.test/{content_id}/{media_id}")
    assert cfg.media_origin() == "https://media.example.test"
    assert cfg.media_link("chan/1", "a b") == "https://media.example.test/chan%2F1/a%20b"
    assert ModerationConfig().media_origin() is None
    for bad in ("javascript:alert(1)/{media_id}", "https://media.example.test/{content_id}", "/{media_id}",
                "https://media.example.test/{other}/{media_id}"):
        with pytest.raises(ValueError):
            ModerationConfig(media_url=bad)
