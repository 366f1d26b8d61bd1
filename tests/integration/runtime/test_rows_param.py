"""Rows sent as one jsonb parameter (`rows_param`) arrive in Postgres exactly as sent, in order."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from warden.runtime.database import rows_param

READ = """SELECT r->>0 AS text, (r->>1)::timestamptz AS at, (r->>2)::float8 AS value, (r->>3)::bool AS flag,
                 (r->>4)::inet AS ip
          FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS u(r, n) ORDER BY n"""


async def test_values_arrive_as_sent(database_url):
    aware = datetime(2026, 12, 3, 14, 5, 6, 123456, tzinfo=timezone(timedelta(hours=3)))
    rows = [
        ("quote \" backslash \\ newline \n tab \t", aware, 0.1 + 0.2, True, "192.0.2.1"),
        ("кокаин купить 🚀 كوكايين", datetime(2026, 1, 2, 3, 4, 5), 1e-300, False, "2001:db8::1"),
        ("", aware.replace(microsecond=0), 12.0, None, None),
        (None, None, None, True, "10.0.0.0/8"),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SET TIME ZONE 'Asia/Tokyo'")  # a text without an offset would be read in this zone
        got = [tuple(r) for r in await conn.fetch(READ, rows_param(rows))]
    finally:
        await conn.close()
    assert [g[0] for g in got] == [r[0] for r in rows]
    assert [g[1] for g in got] == [aware, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                                   aware.replace(microsecond=0), None]  # a naive time is UTC
    assert [g[2] for g in got] == [r[2] for r in rows]  # floats bit for bit
    assert [g[3] for g in got] == [r[3] for r in rows]
    assert [str(g[4]) if g[4] is not None else None for g in got] == ["192.0.2.1", "2001:db8::1", None, "10.0.0.0/8"]


async def test_a_string_postgres_cannot_store_fails_the_statement(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await conn.fetch(READ, rows_param([("nul \x00 byte", None, None, None, None)]))
    finally:
        await conn.close()
