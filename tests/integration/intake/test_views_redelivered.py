"""What each authority may read (intake's views of legal.requests.progress and legal.disclosures.issued) makes a
redelivered event a no-op by the view's own keys, so the views' events take no inbox row
(Subscription.deduplicates): a status delivered twice is one history entry, a package delivered twice
one package, and the newest status stays the request's status whatever comes again."""
from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from warden.contract.events import status_events
from warden.contract.examples import EXAMPLES
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet, create_pool, migrate

from intake.authority_view import disclosures_of, request_of
from intake.service import SERVICE

from tests.integration.intake.test_batched_submissions import record

PROGRESS, ISSUED = "legal.requests.progress", "legal.disclosures.issued"
ISSUED_TYPE = "warden.legal.disclosure.issued.v1"


CASE_ID = str(uuid.uuid4())


def progress(request_id: str, status: str, at: datetime, offset: int) -> ConsumerRecord:
    event, _ = status_events(request_id=request_id, authority_id="court-1", case_id=CASE_ID,
                             status=status, at=at)
    return record(PROGRESS, "warden.legal.request.progress.v1", event.model_dump(mode="json"), offset)


@pytest.fixture
async def intake(database_url):
    service = dataclasses.replace(SERVICE, schema=f"in_views_{uuid.uuid4().hex[:6]}")
    await migrate(database_url, service.schema, [RUNTIME_MIGRATIONS, *service.migrations])
    pool = await create_pool(database_url, service.schema, 2)
    loop = ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.1)
    yield loop, pool
    await pool.close()


async def test_a_redelivered_status_or_package_is_kept_once(intake):
    loop, pool = intake
    at = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    received = progress("REQ-1", "received", at, 0)
    review = progress("REQ-1", "pending_review", at + timedelta(seconds=1), 1)
    package = dict(EXAMPLES[ISSUED_TYPE], authority_id="court-1", request_id="REQ-1", case_id=CASE_ID)
    issued = record(ISSUED, ISSUED_TYPE, package, 0)

    await loop.process([received, review, issued])
    await loop.process([received, review, issued])  # a restart redelivers the whole batch
    await loop.process([review])
    await loop.process([received])  # and an older status again, alone

    async with pool.acquire() as conn:
        seen = await request_of(conn, "court-1", "REQ-1")
        packages = await disclosures_of(conn, "court-1", "REQ-1")
        claims = await conn.fetchval("SELECT count(*) FROM inbox")
    assert [entry["status"] for entry in seen["history"]] == ["received", "pending_review"]
    assert seen["status"] == "pending_review"
    assert [p["sha256"] for p in packages] == [package["sha256"]]
    assert claims == 0


async def test_a_package_is_served_as_sent_and_one_not_in_base64_is_dead_lettered(intake):
    """The view keeps a package's sealed box as bytes and gives back the event's base64 unchanged; a `sealed`
    that is not base64 is refused with a reason, and its batch-mate is kept."""
    loop, pool = intake
    sealed = base64.b64encode(bytes(range(256)) * 3).decode()
    good = dict(EXAMPLES[ISSUED_TYPE], authority_id="court-1", request_id="REQ-2", case_id=str(uuid.uuid4()),
                sealed=sealed)
    bad = dict(good, case_id=str(uuid.uuid4()), sealed="not base64!")

    await loop.process([record(ISSUED, ISSUED_TYPE, bad, 0), record(ISSUED, ISSUED_TYPE, good, 1)])

    async with pool.acquire() as conn:
        packages = await disclosures_of(conn, "court-1", "REQ-2")
        dead = await conn.fetch("SELECT header_names, header_values FROM outbox WHERE topic = $1", f"{ISSUED}.dlq")
    assert [(p["case_id"], p["sealed"]) for p in packages] == [(good["case_id"], sealed)]
    assert len(dead) == 1
    headers = dict(zip(dead[0]["header_names"], dead[0]["header_values"]))
    assert headers["dlq.reason"] == b"invalid_data"
    assert b"not base64" in headers["dlq.error"]


async def test_packages_kept_as_base64_text_become_bytes_and_any_other_is_set_aside(database_url, tmp_path):
    folder = SERVICE.migrations[-1].folder
    for path in folder.glob("00[1234]_*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    schema = f"in_bytes_{uuid.uuid4().hex[:6]}"
    before = [*SERVICE.migrations[:-1], MigrationSet("intake", tmp_path)]
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS, *before])
    box = bytes(range(256)) * 3
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        for sealed in (base64.b64encode(box).decode(), "not base64!", base64.b64encode(box[:-1]).decode()):
            await conn.execute(
                "INSERT INTO authority_disclosures VALUES ($1, 'REQ-1', 'court-1', now(), now(), now(), $2, $3, 'sig')",
                uuid.uuid4(), sealed, "0" * 64)
    finally:
        await conn.close()

    await migrate(database_url, schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])

    pool = await create_pool(database_url, schema, 1)
    try:
        async with pool.acquire() as conn:
            kept = await disclosures_of(conn, "court-1", "REQ-1")
            aside = await conn.fetchval("SELECT array_agg(sealed) FROM authority_disclosures_not_base64")
    finally:
        await pool.close()
    assert sorted(base64.b64decode(p["sealed"]) for p in kept) == sorted([box, box[:-1]])
    assert aside == ["not base64!"]
