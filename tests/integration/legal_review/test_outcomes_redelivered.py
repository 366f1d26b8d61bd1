"""Legal review's record of disclosure's outcomes (legal.disclosures.issued, and the no_data and cancelled statuses
of legal.requests.status) keeps each case's outcome once by the case, so those events take no inbox row
(Subscription.deduplicates): a package or a status delivered again changes nothing."""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

import pytest

from warden.contract.events import status_events
from warden.contract.examples import EXAMPLES
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate

from legal_review.service import SERVICE

from tests.support.requests import new_authority
from tests.integration.legal_review.support import received
from tests.integration.legal_review.test_batched_review import authority_record, received_records, record

ISSUED_TYPE = "warden.legal.disclosure.issued.v1"


@pytest.fixture
async def legal_review(database_url):
    service = dataclasses.replace(SERVICE, schema=f"lr_outcomes_{uuid.uuid4().hex[:6]}")
    await migrate(database_url, service.schema, [RUNTIME_MIGRATIONS, *service.migrations])
    pool = await create_pool(database_url, service.schema, 2)
    yield ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                       retry_initial_s=0.1, retry_max_s=0.1), pool
    await pool.close()


async def test_a_redelivered_outcome_is_kept_once(legal_review):
    loop, pool = legal_review
    court = new_authority()
    with_data, without = received(court), received(court)
    await loop.process([authority_record(court, 0)])
    await loop.process(received_records([with_data, without], 0))
    async with pool.acquire() as conn:
        assert {r["status"] for r in await conn.fetch("SELECT status FROM cases")} == {"approved"}
    package = dict(EXAMPLES[ISSUED_TYPE], case_id=with_data["case_id"], authority_id=court["authority_id"],
                   request_id=with_data["request"]["request_id"], account_id="acct-1")
    issued = record("legal.disclosures.issued", ISSUED_TYPE, package, 0)
    no_data, _ = status_events(request_id=without["request"]["request_id"], authority_id=court["authority_id"],
                               case_id=without["case_id"], status="no_data", at=datetime.now(timezone.utc))
    closed = record("legal.requests.status", "warden.legal.request.status.v1",
                    no_data.shared().model_dump(mode="json"), 0)

    await loop.process([issued, closed])
    async with pool.acquire() as conn:
        first = [dict(r) for r in await conn.fetch("SELECT * FROM fulfilments ORDER BY outcome")]
    await loop.process([issued, closed])  # a restart redelivers them
    await loop.process([closed])

    async with pool.acquire() as conn:
        kept = [dict(r) for r in await conn.fetch("SELECT * FROM fulfilments ORDER BY outcome")]
        claims = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE topic IN ('legal.disclosures.issued', 'legal.requests.status')")
    assert [(str(r["case_id"]), r["outcome"], r["account_id"]) for r in kept] == [
        (with_data["case_id"], "disclosed", "acct-1"), (without["case_id"], "no_data", None)]
    assert kept == first
    assert claims == 0
