"""Legal review's record of disclosure's outcomes (legal.disclosures.issued, and the no_data and cancelled statuses
of legal.requests.status) keeps each case's outcome once by the case, so those events take no inbox row
(Subscription.deduplicates): a package or a status delivered again changes nothing."""
from __future__ import annotations

from datetime import datetime, timezone

from warden.contract.events import status_events
from warden.contract.examples import EXAMPLES

from tests.support.requests import new_authority
from tests.integration.legal_review.support import received
from tests.integration.legal_review.test_batched_review import authority_record, received_records, record

ISSUED_TYPE = "warden.legal.disclosure.issued.v1"


async def test_a_redelivered_outcome_is_kept_once(review_loop):
    loop, pool = review_loop
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
