"""A request that extends a hold
or confirms an emergency must still find its earlier case when both arrive in the same batch."""
from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event

from legal_review.audit import verify_chain

from tests.support.requests import new_authority, registry_record
from tests.integration.legal_review.support import received

EMERGENCY = dict(instrument={"type": "emergency_request"}, emergency=True,
                 emergency_justification="Missing child, credible threat")
PRESERVATION = dict(instrument={"type": "preservation_request"})


def record(topic: str, event_type: str, data: dict, offset: int) -> ConsumerRecord:
    value, headers = encode_structured(new_event(event_type, "/tests", data))
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), tuple(headers))


def authority_record(authority: dict, offset: int) -> ConsumerRecord:
    return record("legal.authorities", "warden.legal.authority.registered.v1", registry_record(authority), offset)


def received_record(data: dict, offset: int) -> ConsumerRecord:
    return record("legal.requests.received", "warden.legal.request.received.v1", data, offset)


async def test_an_extension_and_a_confirmation_find_cases_opened_earlier_in_their_batch(review_loop):
    loop, pool = review_loop
    police, court = new_authority("police", "FR"), new_authority("court", "FR")
    hold = received(court, **PRESERVATION)
    extension = received(court, **PRESERVATION, extends_request_id=hold["request"]["request_id"],
                         suspect=hold["request"]["suspect"])
    emergency = received(police, **EMERGENCY)
    order = received(court, confirms_request_id=emergency["request"]["request_id"],
                     suspect=emergency["request"]["suspect"])
    await loop.process([authority_record(police, 0), authority_record(court, 1)])

    await loop.process([received_record(e, offset) for offset, e in enumerate([hold, extension, emergency, order])])

    async with pool.acquire() as conn:
        status = {str(r["case_id"]): r["status"] for r in await conn.fetch("SELECT case_id, status FROM cases")}
        extensions = await conn.fetchval("SELECT extensions FROM cases WHERE case_id = $1", hold["case_id"])
        confirmed_by = await conn.fetchval("SELECT confirmed_by FROM cases WHERE case_id = $1",
                                           emergency["case_id"])
        schema = await conn.fetchval("SELECT current_schema()")
        checked, broken = await verify_chain(conn, schema)
    assert status == {hold["case_id"]: "approved", extension["case_id"]: "approved",
                      emergency["case_id"]: "pending_review", order["case_id"]: "approved"}
    assert extensions == 1
    assert str(confirmed_by) == order["case_id"]
    assert broken is None and checked >= 7  # 4 opened, 3 decided, the extension and the confirmation
