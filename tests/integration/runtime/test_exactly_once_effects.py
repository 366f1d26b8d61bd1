"""Nothing lost, nothing twice: inbox dedupe, outbox across a kill -9, retries while Postgres is down."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
import pytest

from tests.support.kafka import produce_event, read_topic, wait_for_events
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority
from warden.embedded import EmbeddedPostgres, free_port

TOPIC = "legal.requests.submitted"
SUBMITTED = "warden.legal.request.submitted.v1"


def about(request_id):
    return lambda e: e["data"].get("request_id") == request_id or \
        e["data"].get("request", {}).get("request_id") == request_id


async def count_events(bootstrap, topic, request_id) -> int:
    import json
    n = 0
    for record in await read_topic(bootstrap, topic):
        try:
            if about(request_id)(json.loads(record.value)):
                n += 1
        except ValueError:
            pass
    return n


async def test_same_event_delivered_twice_has_one_effect(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        event = await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        await produce_event(bootstrap, TOPIC, SUBMITTED, data, event_id=event["id"])  # a redelivery
        await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), settle=1.5)
        # a resend with a new CloudEvent id but identical content is also a no-op
        await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        await asyncio.sleep(1.5)
        conn = await asyncpg.connect(database_url)
        inbox = await conn.fetchval("SELECT count(*) FROM intake.inbox WHERE event_id = $1", event["id"])
        await conn.close()
    assert inbox == 1
    assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 1
    assert await count_events(bootstrap, "legal.requests.status", data["request_id"]) == 1


async def test_changed_content_under_the_same_request_id_is_refused_as_a_conflict(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    first = signed(request_data(authority), authority["private_key"])
    changed = signed(dict(first, data_categories=["ip_addresses"]), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_event(bootstrap, TOPIC, SUBMITTED, first)
        await produce_event(bootstrap, TOPIC, SUBMITTED, changed)
        statuses = await wait_for_events(bootstrap, "legal.requests.status", about(first["request_id"]), count=2)
    assert [s["data"]["status"] for s in statuses] == ["received", "invalid"]
    assert statuses[1]["data"]["reasons"][0]["code"] == "conflicting_resubmission"
    assert await count_events(bootstrap, "legal.requests.received", first["request_id"]) == 1


def start_intake(bootstrap: str, database_url: str, group_prefix: str, relay: bool) -> subprocess.Popen:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url,
               WARDEN_HTTP_PORT=str(free_port()), WARDEN_HTTP_HOST="127.0.0.1",
               WARDEN_GROUP_PREFIX=group_prefix, WARDEN_OUTBOX_RELAY=str(relay).lower())
    return subprocess.Popen([sys.executable, "-m", "warden.cli.main", "service", "intake"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_kill_between_database_commit_and_kafka_send_loses_nothing(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    group = f"kill-{os.getpid()}-{time.monotonic_ns()}"
    # First life: the relay is off, so the events stay committed in the outbox, unsent.
    process = start_intake(bootstrap, database_url, group, relay=False)
    try:
        await wait_for_authority(database_url, "intake", authority["authority_id"], timeout=60)
        await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(database_url)
                try:
                    pending = await conn.fetchval(
                        "SELECT count(*) FROM intake.outbox WHERE topic = 'legal.requests.received'")
                finally:
                    await conn.close()
            except (asyncpg.UndefinedTableError, OSError):
                pending = 0
            if pending:
                break
            assert time.monotonic() < deadline, "the service never committed the request"
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 0
        # Second life: same group and database; the relay sends what the first life committed.
        process = start_intake(bootstrap, database_url, group, relay=True)
        await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), timeout=30, settle=2)
    finally:
        process.terminate()
        process.wait(30)
    assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 1
    assert await count_events(bootstrap, "legal.requests.status", data["request_id"]) == 1


@pytest.fixture
def own_postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg").start()
    yield server
    server.stop()


async def test_postgres_outage_is_retried_not_dead_lettered(bootstrap, own_postgres):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    async with running("intake", service_settings(bootstrap, own_postgres.url)) as runtime:
        await wait_for_authority(own_postgres.url, "intake", authority["authority_id"])
        await asyncio.to_thread(own_postgres.pause)
        await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        deadline = time.monotonic() + 15
        while runtime.readiness()["database"]:
            assert time.monotonic() < deadline, "service still reports ready with the database down"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 0
        await asyncio.to_thread(own_postgres.resume)
        await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), timeout=30)
        while not runtime.readiness()["database"]:
            assert time.monotonic() < deadline + 30, "service did not become ready again"
            await asyncio.sleep(0.2)
    dead = [r for r in await read_topic(bootstrap, f"{TOPIC}.dlq") if data["request_id"].encode() in (r.value or b"")]
    assert dead == []
    assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 1


async def test_after_a_failover_the_batch_is_retried_and_the_pool_reaches_the_new_primary(bootstrap, own_postgres):
    """After a failover the pool's connections may still reach the demoted server, which refuses every write
    while they last: the batch is retried, not dead-lettered, and the pool's connections are replaced, so the
    request goes through on the new primary."""
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    admin = await asyncpg.connect(own_postgres.url)
    try:
        async with running("intake", service_settings(bootstrap, own_postgres.url)):
            await wait_for_authority(own_postgres.url, "intake", authority["authority_id"])
            # The sessions open now play the demoted server: read-only from the reloaded configuration.
            # Sessions opened from now on play the new primary: the database's own setting outranks the file's.
            database = await admin.fetchval("SELECT current_database()")
            await admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = off')
            await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            await admin.execute("SELECT pg_reload_conf()")
            await produce_event(bootstrap, TOPIC, SUBMITTED, data)
            await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), timeout=30)
    finally:
        await admin.close()
    dead = [r for r in await read_topic(bootstrap, f"{TOPIC}.dlq") if data["request_id"].encode() in (r.value or b"")]
    assert dead == []
    assert await count_events(bootstrap, "legal.requests.received", data["request_id"]) == 1


async def test_a_connection_the_server_dropped_mid_error_is_retried_on_a_new_one(bootstrap, database_url,
                                                                                 monkeypatch):
    """A pooled connection handed out between the server's farewell (shutdown, restart) and the socket's end
    fails its next query with asyncpg's InternalClientError: the batch is retried on a fresh connection,
    the service stays up and nothing is dead-lettered."""
    from asyncpg.transaction import Transaction

    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    start = Transaction.start
    broken: list = []

    async def start_on_a_dropped_connection(self):
        # A connection's first query as the pool hands it out: its BEGIN, not a savepoint inside a transaction
        # already under way (a batch replayed event by event, from other tests' events on the shared topic).
        if len(broken) < 2 and self._connection._top_xact is None:
            broken.append(self._connection)
            raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
        return await start(self)

    async with running("intake", service_settings(bootstrap, database_url)) as runtime:
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        monkeypatch.setattr(Transaction, "start", start_on_a_dropped_connection)
        await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), timeout=30)
        assert len(broken) == 2 and all(conn.is_closed() for conn in broken)  # never handed out again
        assert runtime.readiness()["database"]
    dead = [r for r in await read_topic(bootstrap, f"{TOPIC}.dlq") if data["request_id"].encode() in (r.value or b"")]
    assert dead == []


async def test_sigterm_finishes_and_exits_cleanly(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    group = f"term-{os.getpid()}-{time.monotonic_ns()}"
    process = start_intake(bootstrap, database_url, group, relay=True)
    try:
        await wait_for_authority(database_url, "intake", authority["authority_id"], timeout=60)
        await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]), timeout=30)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 45) == 0
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM intake.outbox") == 0  # drained
        finally:
            await conn.close()
    finally:
        if process.poll() is None:
            process.kill()


async def test_a_stopped_service_has_committed_the_offsets_of_everything_it_handled(bootstrap, database_url):
    """Offsets are committed behind the next batch; stopping waits for the last commit, so a
    restart does not redeliver what was handled."""
    from aiokafka import TopicPartition

    from warden.runtime import kafka

    authority = new_authority()
    await register_authority(bootstrap, authority)
    requests = [signed(request_data(authority), authority["private_key"]) for _ in range(5)]
    settings = service_settings(bootstrap, database_url)
    async with running("intake", settings):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        for data in requests:
            await produce_event(bootstrap, TOPIC, SUBMITTED, data)
        for data in requests:
            await wait_for_events(bootstrap, "legal.requests.received", about(data["request_id"]))
        reader = kafka.consumer(bootstrap, None, auto_offset_reset="latest", fetch_max_wait_ms=500)
        await reader.start()
        partitions = [TopicPartition(TOPIC, p) for p in reader.partitions_for_topic(TOPIC)]
        ends = await reader.end_offsets(partitions)
        await reader.stop()
    group = kafka.consumer(bootstrap, settings.group_id("intake"), auto_offset_reset="latest",
                           fetch_max_wait_ms=500)
    await group.start()
    try:
        committed = {tp: await group.committed(tp) for tp in partitions if ends[tp]}
    finally:
        await group.stop()
    assert committed == {tp: end for tp, end in ends.items() if end}
