"""The unit of work: state change and outbox rows commit together; counting, hooks and hand-over only after."""
from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.outbox import OutboxRow
from warden.runtime.unit_of_work import NotReady, UnitOfWork

TOPIC = "legal.requests.status"


def emitted(event_type: str) -> float:
    return REGISTRY.get_sample_value("warden_events_emitted_total", {"topic": TOPIC, "type": event_type}) or 0.0


@pytest.fixture
async def pool(database_url):
    schema = f"rt_uow_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE things (id int PRIMARY KEY)")
    yield pool
    await pool.close()


async def test_a_committed_unit_writes_its_rows_then_counts_runs_hooks_and_hands_over(pool):
    service, handed, hooks = f"uow-{uuid.uuid4().hex[:6]}", [], []
    row = OutboxRow(TOPIC, b"k", b"v", [], f"{service}.v1")
    async with UnitOfWork(service, pool, lambda ids, rows: handed.append((ids, rows))) as uow:
        await uow.conn.execute("INSERT INTO things VALUES (1)")
        uow.add([row])
        uow.on_commit(lambda: hooks.append("after"))
        assert handed == [] and hooks == [] and emitted(f"{service}.v1") == 0  # nothing before the commit
    assert await pool.fetchval("SELECT count(*) FROM things") == 1
    [(ids, rows)] = handed
    assert rows == [row] and ids == [await pool.fetchval("SELECT id FROM outbox")]
    assert hooks == ["after"] and emitted(f"{service}.v1") == 1


async def test_a_failing_unit_leaves_nothing_and_tells_nobody(pool):
    service, handed, hooks = f"uow-{uuid.uuid4().hex[:6]}", [], []
    with pytest.raises(ValueError):
        async with UnitOfWork(service, pool, lambda ids, rows: handed.append(ids)) as uow:
            await uow.conn.execute("INSERT INTO things VALUES (2)")
            uow.add([OutboxRow(TOPIC, b"k", b"v", [], f"{service}.v1")])
            uow.on_commit(lambda: hooks.append("after"))
            raise ValueError("the handler failed")
    assert await pool.fetchval("SELECT count(*) FROM things") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert handed == [] and hooks == [] and emitted(f"{service}.v1") == 0
    assert pool.get_size() - pool.get_idle_size() == 0  # the connection went back


def test_no_unit_of_work_before_the_database_is_reached():
    with pytest.raises(NotReady):
        UnitOfWork("svc", None)
