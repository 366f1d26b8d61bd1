"""Subscription.prefetch: one call per batch before the handlers, into the batch's declared state; a failing
prefetch costs speed, not events. The state is made anew for each handler call of the replay."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.contract.events import RequestApproved
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import BatchState, Context, Service, Subscription

DECIDED = "legal.requests.decided"
NOW = datetime.now(timezone.utc)


def approved(case_id: str) -> dict:
    return RequestApproved(case_id=case_id, request_id="REQ-1", authority_id="court-1",
                           suspect={"phone_number": "+33611000001"}, kind="disclosure",
                           data_categories=["ip_addresses"], period={"start": NOW - timedelta(days=3), "end": NOW},
                           nondisclosure_until=None, policy_rules=[{"rule": "t", "outcome": "passed"}],
                           decided_by=["policy"]).model_dump(mode="json")


def record(offset: int, data: dict | bytes) -> ConsumerRecord:
    if isinstance(data, bytes):
        value, headers = data, []
    else:
        value, headers = encode_structured(new_event("warden.legal.request.approved.v1", "/tests", data))
    return ConsumerRecord(DECIDED, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


@dataclass
class Prefetched(BatchState):
    found: dict[str, str] = field(default_factory=dict)
    handled: list[str] = field(default_factory=list)


class Recorder:
    """A service whose prefetch notes what it was given and whose handler notes what it found in the state
    (and what earlier handler calls sharing the state had handled); `breaks`: a case id whose handler fails."""

    def __init__(self, prefetch_fails: bool = False, breaks: str | None = None):
        self.prefetched: list[list[str]] = []
        self.handled: list[tuple[str, bool]] = []  # (case id, served from the prefetch)
        self.shared: list[list[str]] = []  # each call: the case ids handled before it with the same state
        self.prefetch_fails, self.breaks = prefetch_fails, breaks

    async def prefetch(self, ctx: Context, decisions: list) -> None:
        self.prefetched.append([d.case_id for d in decisions])
        if self.prefetch_fails:
            raise ValueError("a bug in the prefetch")
        for d in decisions:
            ctx.state.found[d.case_id] = "prefetched"

    async def handle(self, ctx: Context, decision) -> None:
        state: Prefetched = ctx.state
        self.handled.append((decision.case_id, state.found.pop(decision.case_id, None) == "prefetched"))
        self.shared.append(list(state.handled))
        state.handled.append(decision.case_id)
        if decision.case_id == self.breaks:
            raise ValueError("a bug in the handler")

    def service(self, schema: str) -> Service:
        return Service("prefetch-test", schema, [Subscription(DECIDED, self.handle, prefetch=self.prefetch)],
                       [RUNTIME_MIGRATIONS], batch_state=Prefetched)


@pytest.mark.parametrize("prefetch_fails", [False, True])
async def test_prefetch_runs_once_per_batch_and_its_failure_only_costs_the_replay(database_url, prefetch_fails):
    schema = f"rt_prefetch_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    app = Recorder(prefetch_fails)
    loop = ConsumerLoop(app.service(schema), pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    cases = [str(uuid.uuid4()) for _ in range(3)]
    try:
        await loop.process([record(0, approved(cases[0])), record(1, b"not json"), record(2, approved(cases[1])),
                            record(3, approved(cases[2]))])
        async with pool.acquire() as conn:
            handled = await conn.fetchval("SELECT count(*) FROM inbox")
            dead = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", DECIDED + ".dlq")
    finally:
        await pool.close()

    assert app.prefetched == [cases]  # once, valid events only, in offset order; never in the replay
    if prefetch_fails:
        assert app.handled == [(case, False) for case in cases]  # each read for itself in the replay
    else:
        assert app.handled == [(case, True) for case in cases]
    assert handled == 4 and dead == 1  # the garbage is dead-lettered either way, nothing else


async def test_the_batch_state_is_shared_by_the_batch_and_new_for_each_call_of_the_replay(database_url):
    schema = f"rt_prefetch_{uuid.uuid4().hex[:6]}"
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    cases = [str(uuid.uuid4()) for _ in range(3)]
    app = Recorder(breaks=cases[2])
    loop = ConsumerLoop(app.service(schema), pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    try:
        await loop.process([record(i, approved(case)) for i, case in enumerate(cases)])
    finally:
        await pool.close()

    optimistic, replay = app.shared[:3], app.shared[3:]
    assert optimistic == [[], cases[:1], cases[:2]]  # one state for the batch's transaction
    assert replay == [[], [], []]  # nothing learnt in the rolled-back pass or another savepoint is reused
