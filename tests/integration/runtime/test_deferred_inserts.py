"""Context.insert_new: a batch's inserts in one round trip; a row already there costs a replay, never a wrong answer."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.contract.events import RequestApproved
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import Context, Service, Subscription

DECIDED = "legal.requests.decided"
NOW = datetime.now(timezone.utc)
INSERT = "INSERT INTO claims (case_id, request_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING case_id"


def record(offset: int, case_id: str, request_id: str) -> ConsumerRecord:
    data = RequestApproved(case_id=case_id, request_id=request_id, authority_id="court-1",
                           suspect={"phone_number": "+33611000001"}, kind="disclosure",
                           data_categories=["ip_addresses"], period={"start": NOW - timedelta(days=3), "end": NOW},
                           nondisclosure_until=None, policy_rules=[{"rule": "t", "outcome": "passed"}],
                           decided_by=["policy"]).model_dump(mode="json")
    value, headers = encode_structured(new_event("warden.legal.request.approved.v1", "/tests", data))
    return ConsumerRecord(DECIDED, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


class Claimer:
    """Claims each decision's case id; a request id of COUNT first counts the claims it can see."""

    def __init__(self):
        self.answers: list[tuple[str, bool]] = []  # (request id, insert_new's answer), every pass
        self.seen: list[int] = []

    async def handle(self, ctx: Context, decision) -> None:
        if decision.request_id == "COUNT":
            await ctx.flush_inserts()
            self.seen.append(await ctx.conn.fetchval("SELECT count(*) FROM claims"))
        self.answers.append((decision.request_id, await ctx.insert_new(INSERT, decision.case_id, decision.request_id)))

    def service(self, schema: str) -> Service:
        return Service("inserts-test", schema, [Subscription(DECIDED, self.handle)], [RUNTIME_MIGRATIONS])


@pytest.fixture
async def claiming(database_url):
    """(loop, app, pool, statements): one pooled connection, every statement it runs noted."""
    schema = f"rt_inserts_{uuid.uuid4().hex[:6]}"
    app = Claimer()
    await migrate(database_url, schema, app.service(schema).migrations)
    pool = await create_pool(database_url, schema, 1)
    statements: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE claims (case_id text PRIMARY KEY, request_id text NOT NULL)")
        conn.add_query_logger(lambda logged: statements.append(logged.query))
    loop = ConsumerLoop(app.service(schema), pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    yield loop, app, pool, statements
    await pool.close()


async def test_a_batch_of_new_rows_is_inserted_in_one_round_trip(claiming):
    loop, app, pool, statements = claiming
    cases = [str(uuid.uuid4()) for _ in range(5)]
    await loop.process([record(i, case, f"REQ-{i}") for i, case in enumerate(cases)])

    assert statements.count(INSERT) == 1  # Connection.fetchmany: one round trip for the five
    assert app.answers == [(f"REQ-{i}", True) for i in range(5)]
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT case_id, request_id FROM claims ORDER BY request_id")
    assert [(r["case_id"], r["request_id"]) for r in rows] == [(case, f"REQ-{i}") for i, case in enumerate(cases)]


async def test_a_row_already_there_replays_the_batch_and_its_handler_is_told(claiming):
    loop, app, pool, statements = claiming
    known, new = str(uuid.uuid4()), str(uuid.uuid4())
    await loop.process([record(0, known, "FIRST")])
    app.answers.clear()

    # The known case again (a new event), a new one, and the new one twice within the batch.
    await loop.process([record(1, known, "AGAIN"), record(2, new, "NEW"), record(3, new, "NEW-AGAIN")])

    optimistic, replay = app.answers[:3], app.answers[3:]
    assert optimistic == [("AGAIN", True), ("NEW", True), ("NEW-AGAIN", True)]  # assumed, then found out
    assert replay == [("AGAIN", False), ("NEW", True), ("NEW-AGAIN", False)]  # the truth, event by event
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT case_id, request_id FROM claims ORDER BY request_id")
        consumed = await conn.fetchval("SELECT count(*) FROM inbox")
        dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", DECIDED + ".dlq")
    assert {(r["case_id"], r["request_id"]) for r in rows} == {(known, "FIRST"), (new, "NEW")}
    assert consumed == 4 and dead == 0  # handled, none dead-lettered


async def test_flush_inserts_shows_a_handler_what_earlier_events_of_its_batch_inserted(claiming):
    loop, app, pool, statements = claiming
    await loop.process([record(0, str(uuid.uuid4()), "A"), record(1, str(uuid.uuid4()), "B"),
                        record(2, str(uuid.uuid4()), "COUNT")])

    assert app.seen == [2]
    assert app.answers == [("A", True), ("B", True), ("COUNT", True)]  # no replay
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM claims") == 3
