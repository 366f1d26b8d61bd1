"""The subscriber feed, a batch at a time: one bad event in a batch is dead-lettered, the rest are stored."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from tests.support.kafka import produce_event, wait_for_records
from tests.support.stack import running, service_settings

SUBSCRIBERS = "platform.subscribers"
SESSION, ACCOUNT = "warden.subscriber.session.observed.v1", "warden.subscriber.account.updated.v1"
NOW = datetime.now(timezone.utc)


async def test_a_bad_session_or_phone_number_in_a_batch_costs_only_itself(bootstrap, database_url):
    tag = uuid.uuid4().hex[:8]
    good = [f"acct-{tag}-{n}" for n in range(20)]
    # All on the topic before the service starts, so they come in the same batches.
    for n, who in enumerate(good):
        await produce_event(bootstrap, SUBSCRIBERS, ACCOUNT, {
            "account_id": who, "username": f"@User_{tag}_{n}", "phone_number": f"+3361{n:07d}", "country": "FR",
            "updated_at": (NOW - timedelta(days=2)).isoformat()})
        await produce_event(bootstrap, SUBSCRIBERS, SESSION, {
            "account_id": who, "ip": f"198.51.100.{n}", "observed_at": (NOW - timedelta(hours=n)).isoformat()})
    bad_ip = await produce_event(bootstrap, SUBSCRIBERS, SESSION, {
        "account_id": f"acct-{tag}-bad", "ip": "999.1.1.1", "observed_at": NOW.isoformat()})
    bad_phone = await produce_event(bootstrap, SUBSCRIBERS, ACCOUNT, {
        "account_id": f"acct-{tag}-bad", "username": None, "phone_number": "call me", "country": "FR",
        "updated_at": NOW.isoformat()})
    async with running("disclosure", service_settings(bootstrap, database_url)):
        dead = await wait_for_records(bootstrap, SUBSCRIBERS + ".dlq",
                                      lambda r: any(e["id"].encode() in (r.value or b"") for e in (bad_ip, bad_phone)),
                                      count=2)
        conn = await asyncpg.connect(database_url)
        try:
            deadline = time.monotonic() + 20
            while await conn.fetchval("SELECT count(*) FROM disclosure.phone_changes WHERE account_id LIKE $1",
                                      f"acct-{tag}-%") < len(good) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            sessions = await conn.fetch("SELECT account_id, host(ip) AS ip FROM disclosure.sessions"
                                        " WHERE account_id LIKE $1", f"acct-{tag}-%")
            accounts = await conn.fetch("SELECT a.account_id, a.username, p.phone_number FROM disclosure.accounts a"
                                        " JOIN disclosure.phone_changes p USING (account_id)"
                                        " WHERE a.account_id LIKE $1", f"acct-{tag}-%")
        finally:
            await conn.close()
    assert {(r["account_id"], r["ip"]) for r in sessions} == {(who, f"198.51.100.{n}") for n, who in enumerate(good)}
    assert {(r["account_id"], r["username"], r["phone_number"]) for r in accounts} == {
        (who, f"user_{tag}_{n}", f"+3361{n:07d}") for n, who in enumerate(good)}
    assert sorted(dict(r.headers)["dlq.reason"] for r in dead) == [b"invalid_data", b"invalid_data"]
    # Nothing personal in the headers: not the bad address, not the account.
    assert not any(b"999.1.1.1" in v or tag.encode() in v for r in dead for _, v in r.headers)
