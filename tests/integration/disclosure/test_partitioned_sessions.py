"""Sessions by week: retention drops a week and keeps what a hold preserves; lookups cross weeks exactly."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet, create_pool, migrate

from disclosure import store
from disclosure.package import Session
from disclosure.service import SERVICE

from tests.support.stack import running, service_settings

NOW = datetime.now(timezone.utc)
CUTOFF = NOW - timedelta(days=365)


async def migrated_pool(database_url: str) -> asyncpg.Pool:
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    return await create_pool(database_url, SERVICE.schema, 2)


async def place_hold(conn: asyncpg.Connection, account_id: str, until: datetime) -> None:
    case_id = str(uuid.uuid4())
    assert await store.record_effects(conn, [store.CaseEffect(case_id, "REQ-1", "court-1", "preservation", "preserved",
                                                              None, NOW, account_id, until)]) == {case_id}


async def ips_of(conn: asyncpg.Connection, account_id: str, start: datetime, end: datetime) -> set[str]:
    return {s.ip for s in await store.sessions_of(conn, account_id, start, end)}


async def test_retention_drops_old_weeks_and_keeps_what_a_hold_preserves(database_url):
    pool = await migrated_pool(database_url)
    held, ended, free = "acct-held", "acct-hold-ended", "acct-free"
    old, recent = CUTOFF - timedelta(days=20), NOW - timedelta(days=3)
    try:
        async with pool.acquire() as conn:
            assert await store.create_session_partitions(conn, old, NOW + timedelta(weeks=1)) > 50
            await store.record_sessions(conn, [
                Session(who, ip, at) for who in (held, ended, free)
                for ip, at in (("192.0.2.1", old), ("192.0.2.2", recent))])
            await place_hold(conn, held, NOW + timedelta(days=90))
            await place_hold(conn, ended, NOW - timedelta(days=1))
            expired = [(name, end) for name, _, end in await store.session_partitions(conn) if end <= CUTOFF]
            assert expired, "the old sessions' week is past retention"
            for name, _ in expired:
                async with conn.transaction():
                    await store.drop_expired_partition(conn, name, NOW)
            remaining = {name for name, _, _ in await store.session_partitions(conn)}
            long_ago = CUTOFF - timedelta(days=400)

            assert not remaining & {name for name, _ in expired}
            assert await ips_of(conn, held, long_ago, NOW) == {"192.0.2.1", "192.0.2.2"}
            assert await ips_of(conn, ended, long_ago, NOW) == {"192.0.2.2"}
            assert await ips_of(conn, free, long_ago, NOW) == {"192.0.2.2"}
            found = await store.lookup_suspect(conn, store.Suspect("case-1", held, None, None, long_ago, NOW))
            assert {s.ip for s in found.sessions} == {"192.0.2.1", "192.0.2.2"}

            # The hold ends: what it kept aside goes with the next purge, the rest stays.
            await conn.execute("UPDATE holds SET hold_until = $1 WHERE account_id = $2", NOW - timedelta(hours=1),
                               held)
            assert await store.purge_held_sessions(conn, CUTOFF, NOW) == 1
            assert await ips_of(conn, held, long_ago, NOW) == {"192.0.2.2"}
            assert await conn.fetchval("SELECT count(*) FROM held_sessions") == 0
    finally:
        await pool.close()


async def test_a_session_without_its_week_is_stored_and_purged_with_retention(database_url):
    pool = await migrated_pool(database_url)
    ancient, future = CUTOFF - timedelta(days=400), NOW + timedelta(days=400)
    try:
        async with pool.acquire() as conn:
            await place_hold(conn, "acct-held", NOW + timedelta(days=90))
            await store.record_sessions(conn, [Session("acct-held", "192.0.2.1", ancient),
                                               Session("acct-free", "192.0.2.1", ancient),
                                               Session("acct-free", "192.0.2.3", future)])
            assert await conn.fetchval("SELECT count(*) FROM sessions_default") == 3
            assert await store.purge_default_sessions(conn, CUTOFF, NOW) == 1  # the held one is kept aside
            assert await ips_of(conn, "acct-held", ancient, NOW) == {"192.0.2.1"}
            assert await ips_of(conn, "acct-free", ancient, future) == {"192.0.2.3"}
            # Its week created later, the future session moves out of the default partition.
            await store.create_session_partitions(conn, future, future)
            assert await conn.fetchval("SELECT count(*) FROM sessions_default") == 0
            assert await ips_of(conn, "acct-free", ancient, future) == {"192.0.2.3"}
    finally:
        await pool.close()


async def test_a_period_across_weeks_returns_exactly_its_sessions(database_url):
    pool = await migrated_pool(database_url)
    monday = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a partition boundary
    try:
        async with pool.acquire() as conn:
            await store.create_session_partitions(conn, monday - timedelta(weeks=3), monday + timedelta(weeks=3))
            instants = [monday + timedelta(hours=h) for h in range(-24 * 15, 24 * 15, 7)]
            await store.record_sessions(conn, [Session("acct-a", f"10.0.{n // 250}.{n % 250}", at)
                                               for n, at in enumerate(instants)]
                                        + [Session("acct-b", "192.0.2.9", at) for at in instants])
            assert await conn.fetchval("SELECT count(*) FROM sessions_default") == 0
            for start, end in [(monday - timedelta(microseconds=1), monday),          # both sides of the boundary
                               (monday - timedelta(days=9, hours=5), monday + timedelta(days=10, hours=3)),
                               (instants[3], instants[40]),                           # bounds are inclusive
                               (monday + timedelta(days=1, minutes=1), monday + timedelta(days=1, minutes=2))]:
                want = {at for at in instants if start <= at <= end}
                found = await store.sessions_of(conn, "acct-a", start, end)
                assert {s.observed_at for s in found} == want
                assert {s.account_id for s in found} <= {"acct-a"}
                lookup = await store.lookup_suspect(conn, store.Suspect("c", "acct-a", None, None, start, end))
                assert sorted(s.observed_at for s in lookup.sessions) == sorted(want)
            # Index-backed: each week the period meets is read by its primary key; the others are pruned.
            plan = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN SELECT observed_at FROM sessions WHERE account_id = 'acct-a'"
                " AND observed_at >= $1 AND observed_at <= $2", monday - timedelta(days=2), monday + timedelta(days=2)))
            assert plan.count("Index Only Scan") == 2 and "Seq Scan" not in plan, plan
    finally:
        await pool.close()


async def test_a_v1_store_migrates_into_weekly_partitions(database_url, tmp_path):
    folder = SERVICE.migrations[-1].folder
    for path in folder.glob("00[123]_*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    v1 = [*SERVICE.migrations[:-1], MigrationSet("disclosure", tmp_path)]
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *v1])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SERVICE.schema})
    try:
        rows = [("acct-1", NOW - timedelta(days=d), "192.0.2.1") for d in (1, 30, 200, 500)]
        await conn.executemany("INSERT INTO sessions VALUES ($1, $2, $3)", rows)
        await conn.execute("INSERT INTO cases VALUES ('c1', 'REQ-1', 'court-1', 'preservation', 'preserved', NULL,"
                           " now()); INSERT INTO holds VALUES ('c1', 'acct-1', now() + interval '9 days', now())")
    finally:
        await conn.close()
    pool = await migrated_pool(database_url)
    try:
        async with pool.acquire() as conn:
            assert {s.observed_at for s in await store.sessions_of(conn, "acct-1", NOW - timedelta(days=600), NOW)} \
                == {at for _, at, _ in rows}
            assert await conn.fetchval("SELECT count(*) FROM sessions_default") == 0
            assert len(await store.session_partitions(conn)) > 70
            assert await conn.fetchval("SELECT count(*) FROM holds WHERE account_id = 'acct-1'") == 1
    finally:
        await pool.close()


async def test_replicas_running_the_job_at_once_create_and_drop_each_week_once(database_url):
    pool = await migrated_pool(database_url)
    first, last = CUTOFF - timedelta(weeks=3), NOW + timedelta(weeks=2)
    try:
        async def create() -> int:
            async with pool.acquire() as conn, conn.transaction():
                return await store.create_session_partitions(conn, first, last)
        created = await asyncio.gather(create(), create())
        async with pool.acquire() as conn:
            weeks = await store.session_partitions(conn)
            await store.record_sessions(conn, [Session("acct-a", "192.0.2.1", first + timedelta(days=1))])
            name = weeks[0][0]
            async with conn.transaction():
                assert await store.drop_expired_partition(conn, name, NOW) == (1, 0)
            async with conn.transaction():
                assert await store.drop_expired_partition(conn, name, NOW) == (0, 0)
    finally:
        await pool.close()
    assert sorted(created)[0] == 0 and sorted(created)[1] > 0  # one created them, the other found them there
    assert all(a[2] == b[1] for a, b in zip(weeks, weeks[1:])), "one partition per week, no gap"


async def test_the_retention_job_drops_a_week_past_retention_and_keeps_the_held_sessions(
        bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_RETENTION_INTERVAL_S", "0.5")
    pool = await migrated_pool(database_url)
    old = CUTOFF - timedelta(days=30)
    try:
        async with pool.acquire() as conn:
            await store.create_session_partitions(conn, old, old)
            [(week, _, _)] = [w for w in await store.session_partitions(conn) if w[1] <= old < w[2]]
            await store.record_sessions(conn, [Session(who, "192.0.2.1", old) for who in ("acct-held", "acct-free")])
            await place_hold(conn, "acct-held", NOW + timedelta(days=90))
        async with running("disclosure", service_settings(bootstrap, database_url)):
            deadline = asyncio.get_running_loop().time() + 60  # a loaded machine starts the service slowly
            async with pool.acquire() as conn:
                while week in {w[0] for w in await store.session_partitions(conn)}:
                    assert asyncio.get_running_loop().time() < deadline, "the week past retention is still there"
                    await asyncio.sleep(0.2)
                held = await ips_of(conn, "acct-held", old - timedelta(days=1), NOW)
                free = await ips_of(conn, "acct-free", old - timedelta(days=1), NOW)
                # The service also takes in what other tests put on the shared feed: count at least ours.
                purged = await conn.fetchval("SELECT sum((detail->>'sessions')::int) FROM audit_log"
                                             " WHERE action = 'retention.purged'")
    finally:
        await pool.close()
    assert (held, free) == ({"192.0.2.1"}, set())
    assert purged >= 1
