"""Package timestamps: RFC 3339 in UTC with `Z`, exactly as `datetime.isoformat` writes the moment."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from disclosure.package import timestamp

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31),
                       timezones=st.one_of(st.just(timezone.utc), offsets))


@given(moments)
def test_a_timestamp_is_the_utc_isoformat_with_z(moment):
    assert timestamp(moment) == moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def test_microseconds_are_written_only_when_there_are_any():
    assert timestamp(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)) == "2026-03-01T12:00:00Z"
    assert timestamp(datetime(2026, 3, 1, 13, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))) \
        == "2026-03-01T12:00:00.000005Z"
