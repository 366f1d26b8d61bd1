"""Intake's submissions batch handler (handlers.receive_requests): one insert for the batch's new requests;
a forged request in the batch is dead-lettered alone with its reason while its batch-mates are received;
a duplicate within the batch is told apart (identical: ignored; conflicting: refused); and the batch leaves
what the same events handled one by one leave."""
from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate

from intake.service import SERVICE

from tests.support.requests import new_authority, registry_record, request_data, signed

SUBMITTED = "legal.requests.submitted"


def record(topic: str, event_type: str, data: dict, offset: int) -> ConsumerRecord:
    value, headers = encode_structured(new_event(event_type, "/tests", data))
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


def submitted(data: dict, offset: int) -> ConsumerRecord:
    return record(SUBMITTED, "warden.legal.request.submitted.v1", data, offset)


class Counted:
    """Intake with its submissions handler's calls counted (how many items each call got)."""

    def __init__(self, schema: str):
        self.calls: list[int] = []
        original = SERVICE.subscription(SUBMITTED)

        async def handle_batch(ctx, items):
            self.calls.append(len(items))
            await original.handle_batch(ctx, items)

        subscriptions = [dataclasses.replace(s, handle_batch=handle_batch) if s.topic == SUBMITTED else s
                         for s in SERVICE.subscriptions]
        self.service = dataclasses.replace(SERVICE, schema=schema, subscriptions=subscriptions)


@pytest.fixture
async def intake(database_url):
    """A factory of (loop, pool, counted) on schemas of their own."""
    pools = []

    async def make():
        counted = Counted(f"in_batch_{uuid.uuid4().hex[:6]}")
        await migrate(database_url, counted.service.schema, [RUNTIME_MIGRATIONS, *counted.service.migrations])
        pool = await create_pool(database_url, counted.service.schema, 2)
        pools.append(pool)
        loop = ConsumerLoop(counted.service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                            retry_initial_s=0.1, retry_max_s=0.1)
        return loop, pool, counted

    yield make
    for pool in pools:
        await pool.close()


async def effects(pool) -> dict:
    """What intake wrote: its submissions, and its outgoing events by topic as (request id, what)."""
    async with pool.acquire() as conn:
        stored = sorted(r["request_id"] for r in await conn.fetch("SELECT request_id FROM submissions"))
        rows = await conn.fetch("SELECT topic, value, header_names, header_values FROM outbox ORDER BY id")
    out: dict[str, list] = {}
    for row in rows:
        if row["topic"].endswith(".dlq"):
            headers = dict(zip(row["header_names"], row["header_values"]))
            out.setdefault(row["topic"], []).append(headers["dlq.reason"].decode())
            continue
        data = json.loads(row["value"])["data"]
        if row["topic"] == "legal.requests.received":
            out.setdefault(row["topic"], []).append(data["request"]["request_id"])
        else:
            reasons = [r["code"] for r in data.get("reasons") or []]
            out.setdefault(row["topic"], []).append((data["request_id"], data["status"], reasons))
    return {"submissions": stored, **{topic: sorted(found) for topic, found in out.items()}}


def the_batch() -> tuple[dict, list[dict]]:
    """An authority and a batch: A, a forgery of B, C, A again (identical), C changed (conflicting)."""
    court, impostor = new_authority(), new_authority()
    a = signed(request_data(court), court["private_key"])
    forged = signed(request_data(court), impostor["private_key"])
    c = signed(request_data(court), court["private_key"])
    changed = signed(dict(c, data_categories=["ip_addresses"]), court["private_key"])
    return court, [a, forged, c, a, changed]


async def test_a_batch_stores_its_new_requests_and_dead_letters_only_the_forgery(intake):
    loop, pool, counted = await intake()
    court, batch = the_batch()
    a, forged, c = batch[0], batch[1], batch[2]
    await loop.process([record("legal.authorities", "warden.legal.authority.registered.v1",
                               registry_record(court), 0)])

    await loop.process([submitted(data, offset) for offset, data in enumerate(batch)])

    assert counted.calls == [5]  # one call, no replay: the forgery was rejected alone
    found = await effects(pool)
    assert found["submissions"] == sorted([a["request_id"], c["request_id"]])
    assert found["legal.requests.received"] == sorted([a["request_id"], c["request_id"]])  # once each
    assert found["legal.requests.status"] == sorted([
        (a["request_id"], "received", []), (c["request_id"], "received", []),
        (forged["request_id"], "invalid", ["bad_signature"]),  # the authority is told (on_rejected)
        (c["request_id"], "invalid", ["conflicting_resubmission"])])  # A again: ignored, nothing said
    assert found["legal.requests.submitted.dlq"] == ["bad_signature"]


async def test_a_batch_leaves_what_the_same_events_one_by_one_leave(intake):
    court, batch = the_batch()
    results = []
    for one_by_one in (False, True):
        loop, pool, counted = await intake()
        await loop.process([record("legal.authorities", "warden.legal.authority.registered.v1",
                                   registry_record(court), 0)])
        records = [submitted(data, offset) for offset, data in enumerate(batch)]
        for part in ([[r] for r in records] if one_by_one else [records]):
            await loop.process(part)
        results.append(await effects(pool))
    assert results[0] == results[1]
    assert results[0]["submissions"] and results[0]["legal.requests.submitted.dlq"] == ["bad_signature"]
