"""Section: the subscriber feed, events/s one disclosure worker stores from `platform.subscribers`.

`events` are put on the topic first, nine session observations to one account update (a
new account or a phone number change), sessions of the last hour spread over `events / 10`
accounts, as the platform would send them. Then one `warden service disclosure` subprocess
drains them through its batch handler (`disclosure.handlers.record_subscriber_events`). The
clock runs from the first batch's transaction to the last one's, read from the inbox rows
those transactions wrote (the events of the first batch are not counted, the wait for the
service to start is not measured); every event must be in the inbox, and every session in
the store, at the end.
"""
from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from warden.contract.envelope import encode_structured, new_event

from bench.loads import produce_all
from bench.stack import ServiceProcess, Stack
from bench.stats import rate

TOPIC = "platform.subscribers"
SESSION, ACCOUNT = "warden.subscriber.session.observed.v1", "warden.subscriber.account.updated.v1"


def feed(run_id: str, count: int, seed: int = 5) -> list[tuple[bytes, bytes, list]]:
    """(key, value, headers) of `count` subscriber events; event ids start with bench-<run_id>-."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    accounts = max(count // 10, 1)
    out = []
    for n in range(count):
        account_id = f"acct-{run_id}-{rng.randrange(accounts)}"
        if n % 10 == 0:
            event_type, data = ACCOUNT, {
                "account_id": account_id, "username": f"user_{run_id}_{n}", "phone_number": f"+336{n % 10**8:08d}",
                "country": "FR", "updated_at": (now - timedelta(seconds=rng.randrange(3600))).isoformat()}
        else:
            event_type, data = SESSION, {
                "account_id": account_id, "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                "observed_at": (now - timedelta(seconds=rng.randrange(3600), microseconds=n)).isoformat()}
        value, headers = encode_structured(new_event(event_type, "/bench/platform", data,
                                                     event_id=f"bench-{run_id}-{n}"))
        out.append((account_id.encode(), value, headers))
    return out


async def run(stack: Stack, events: int, logs: Path, profile: Path | None = None, label: str = "ingest") -> dict:
    run_id = f"{stack.run_id}i"
    records = feed(run_id, events)
    sessions = sum(1 for _, value, _ in records if SESSION.encode() in value)
    produce_s = await produce_all(stack.bootstrap, TOPIC, records)
    database_url = await stack.new_database(label)
    service = ServiceProcess("disclosure", stack.bootstrap, database_url, f"bench-{run_id}", logs).start()
    prefix = f"bench-{run_id}-%"
    conn = None
    try:
        service.wait_ready(timeout=120)
        conn = await asyncpg.connect(database_url)
        if profile is not None:
            service.profile(profile, seconds=8)
        done = 0
        deadline = time.monotonic() + 900
        while done < events and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            done = await conn.fetchval("SELECT count(*) FROM disclosure.inbox WHERE event_id LIKE $1", prefix)
        if done < events:
            raise RuntimeError(f"disclosure stored {done} of {events} feed events in time; see {service.log_path}")
        first, last = await conn.fetchrow(
            "SELECT min(processed_at), max(processed_at) FROM disclosure.inbox WHERE event_id LIKE $1", prefix)
        in_first = await conn.fetchval(
            "SELECT count(*) FROM disclosure.inbox WHERE event_id LIKE $1 AND processed_at = $2", prefix, first)
        stored = await conn.fetchval("SELECT count(*) FROM disclosure.sessions WHERE account_id LIKE $1",
                                     f"acct-{run_id}-%")
        dead = await conn.fetchval("SELECT count(*) FROM disclosure.outbox WHERE topic = $1", TOPIC + ".dlq")
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT processed_at) FROM disclosure.inbox WHERE event_id LIKE $1", prefix)
    finally:
        if conn is not None:
            await conn.close()
        service.stop()
    await stack.drop_database(database_url)
    if stored != sessions:
        raise RuntimeError(f"{stored} of {sessions} sessions in the store: the feed was not what the bench expects")
    elapsed = (last - first).total_seconds()
    return {"events": events, "sessions": sessions, "seconds": round(elapsed, 3),
            "events_per_s": rate(events - in_first, elapsed), "batches": transactions,
            "dead_lettered": dead, "peak_rss_mb": round(service.peak_rss / 2**20, 1),
            "preload_events_per_s": rate(events, produce_s)}
