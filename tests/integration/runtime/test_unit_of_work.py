"""The unit of work: state change and outbox rows commit together; counting, hooks and hand-over only after."""
from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.outbox import OutboxRow
from warden.runtime.unit_of_work import NotReady, UnitOfWork

TOPIC = "legal.requests.status"


def emitted(service: str) -> float:
    return REGISTRY.get_sample_value("warden_events_emitted_total",
                                     {"service": service, "topic": TOPIC, "type": "t.v1"}) or 0.0


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
    row = OutboxRow(TOPIC, b"k", b"v", [], "t.v1")
    async with UnitOfWork(service, pool, lambda ids, rows: handed.append((ids, rows))) as uow:
        await uow.conn.execute("INSERT INTO things VALUES (1)")
        uow.add([row])
        uow.on_commit(lambda: hooks.append("after"))
        assert handed == [] and hooks == [] and emitted(service) == 0  # nothing before the commit
    assert await pool.fetchval("SELECT count(*) FROM things") == 1
    [(ids, rows)] = handed
    assert rows == [row] and ids == [await pool.fetchval("SELECT id FROM outbox")]
    assert hooks == ["after"] and emitted(service) == 1


async def test_a_failing_unit_leaves_nothing_and_tells_nobody(pool):
    service, handed, hooks = f"uow-{uuid.uuid4().hex[:6]}", [], []
    with pytest.raises(ValueError):
        async with UnitOfWork(service, pool, lambda ids, rows: handed.append(ids)) as uow:
            await uow.conn.execute("INSERT INTO things VALUES (2)")
            uow.add([OutboxRow(TOPIC, b"k", b"v", [], "t.v1")])
            uow.on_commit(lambda: hooks.append("after"))
            raise ValueError("the handler failed")
    assert await pool.fetchval("SELECT count(*) FROM things") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert handed == [] and hooks == [] and emitted(service) == 0
    assert pool.get_size() - pool.get_idle_size() == 0  # the connection went back


def test_no_unit_of_work_before_the_database_is_reached():
    with pytest.raises(NotReady):
        UnitOfWork("svc", None)


async def test_an_event_emitted_at_commit_is_built_once_per_key_from_the_final_state(pool):
    """emit_at_commit: one event per key and transaction (the last registration wins), built just before the
    commit, so it sees everything the transaction did; a build that returns None emits nothing."""
    from datetime import datetime, timezone

    from warden.contract.events import RequestStatus

    state, handed = {"seen": 0}, []

    def status() -> RequestStatus:
        return RequestStatus(request_id=f"r-{state['seen']}", authority_id="a", status="pending_review",
                             at=datetime.now(timezone.utc))

    async with UnitOfWork("legal-review", pool, lambda ids, rows: handed.extend(rows)) as uow:
        for seen in (1, 2, 3):
            state["seen"] = seen
            uow.emit_at_commit("head", lambda: None)   # replaced by the next registration under the key
            uow.emit_at_commit("head", status)
        uow.emit_at_commit("nothing", lambda: None)
        state["seen"] = 4  # after the last registration, before the commit
    assert [r.topic for r in handed] == ["legal.requests.status"]
    assert b'"request_id":"r-4"' in handed[0].value.replace(b" ", b"")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
