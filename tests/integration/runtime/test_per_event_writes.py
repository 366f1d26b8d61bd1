"""A per-event handler's statements tell the truth: an insert-if-new says whether it inserted, a duplicate
within the batch included, and a read sees what earlier events of the batch wrote; no replay for either."""
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
        self.answers: list[tuple[str, bool]] = []  # (request id, whether its insert wrote), every pass
        self.seen: list[int] = []

    async def handle(self, ctx: Context, decision) -> None:
        if decision.request_id == "COUNT":
            self.seen.append(await ctx.conn.fetchval("SELECT count(*) FROM claims"))
        inserted = await ctx.conn.fetchrow(INSERT, decision.case_id, decision.request_id) is not None
        self.answers.append((decision.request_id, inserted))

    def service(self, schema: str) -> Service:
        return Service("inserts-test", schema, [Subscription(DECIDED, self.handle)], [RUNTIME_MIGRATIONS])


@pytest.fixture
async def claiming(database_url):
    """(loop, app, pool): a consumer loop on one pooled connection."""
    schema = f"rt_inserts_{uuid.uuid4().hex[:6]}"
    app = Claimer()
    await migrate(database_url, schema, app.service(schema).migrations)
    pool = await create_pool(database_url, schema, 1)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE claims (case_id text PRIMARY KEY, request_id text NOT NULL)")
    loop = ConsumerLoop(app.service(schema), pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    yield loop, app, pool
    await pool.close()


async def test_an_insert_if_new_says_whether_it_inserted_in_one_pass(claiming):
    loop, app, pool = claiming
    known, new = str(uuid.uuid4()), str(uuid.uuid4())
    await loop.process([record(0, known, "FIRST")])
    app.answers.clear()

    # The known case again (a new event), a new one, and the new one twice within the batch.
    await loop.process([record(1, known, "AGAIN"), record(2, new, "NEW"), record(3, new, "NEW-AGAIN")])

    assert app.answers == [("AGAIN", False), ("NEW", True), ("NEW-AGAIN", False)]  # the truth, once: no replay
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT case_id, request_id FROM claims ORDER BY request_id")
        consumed = await conn.fetchval("SELECT count(*) FROM inbox")
        dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", DECIDED + ".dlq")
    assert {(r["case_id"], r["request_id"]) for r in rows} == {(known, "FIRST"), (new, "NEW")}
    assert consumed == 4 and dead == 0  # handled, none dead-lettered


async def test_a_handler_reads_what_earlier_events_of_its_batch_wrote(claiming):
    loop, app, pool = claiming
    await loop.process([record(0, str(uuid.uuid4()), "A"), record(1, str(uuid.uuid4()), "B"),
                        record(2, str(uuid.uuid4()), "COUNT")])

    assert app.seen == [2]
    assert app.answers == [("A", True), ("B", True), ("COUNT", True)]  # no replay
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM claims") == 3
