"""Approvals arriving together are acted on together (one batch handler call), each on its own merits:
a forged or replayed approval among them is refused alone, the others act once, and the audit chain
holds one entry per effect, in order, the last of them signed for all."""
from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka

from tests.integration.disclosure.test_disclosure_pipeline import (
    APPROVED, DECIDED, account, ago, new_ip, new_phone, of_case, session, stored,
)
from tests.support.audit import entries, verify
from tests.support.kafka import wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, signed_approval
from tests.support.stack import running, service_settings


async def produce_together(bootstrap: str, events: list[tuple[dict, str]]) -> None:
    """Each (data, event id) as an approval, sent by one producer and flushed once: one fetch takes them all."""
    producer = kafka.producer(bootstrap, linger_ms=50)
    await producer.start()
    try:
        for data, event_id in events:
            value, headers = encode_structured(new_event(APPROVED, "/warden/legal-review", data, event_id=event_id))
            await producer.send(DECIDED, value, key=TOPICS[DECIDED].key_of(data).encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def on_case(case_id: str):
    return lambda record: case_id.encode() in (record.value or b"")


async def test_approvals_of_one_batch_act_each_once_and_a_forged_or_replayed_one_alone_is_refused(
        bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    discloser, keeper = f"acct-{uuid.uuid4().hex[:10]}", f"acct-{uuid.uuid4().hex[:10]}"
    phone, keeper_phone = new_phone(), new_phone()
    await account(bootstrap, discloser, phone, ago(100))
    await account(bootstrap, keeper, keeper_phone, ago(100))
    await session(bootstrap, discloser, new_ip(), ago(3))

    disclosure = signed_approval(authority, {"phone_number": phone}, period={"start": ago(30), "end": ago(1)})
    preservation = signed_approval(authority, {"phone_number": keeper_phone}, kind="preservation",
                                   period={"start": ago(30), "end": ago(1)})
    unknown = signed_approval(authority, {"account_id": f"acct-{uuid.uuid4().hex}"},
                              period={"start": ago(30), "end": ago(1)})
    # An attacker's copy of a real approval, its suspect changed to the keeper: the decision signature no
    # longer verifies. Its case id is its own, so its effect (or absence) is seen apart.
    forged = dict(signed_approval(authority, {"phone_number": new_phone()}, period={"start": ago(30), "end": ago(1)}),
                  suspect={"phone_number": keeper_phone, "account_id": None, "username": None})
    batch = [(disclosure, str(uuid.uuid4())), (forged, str(uuid.uuid4())), (preservation, str(uuid.uuid4())),
             (disclosure, str(uuid.uuid4())),  # the same approval again, as a new event: a replay
             (unknown, str(uuid.uuid4()))]
    random.Random(7).shuffle(batch[1:])  # wherever the replay and the forgery sit after the original

    async with running("disclosure", service_settings(bootstrap, database_url)):
        await stored(database_url, discloser, sessions=1)
        await stored(database_url, keeper)
        conn = await asyncpg.connect(database_url)
        try:
            before = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM disclosure.audit_log")
            await produce_together(bootstrap, batch)
            dead = await wait_for_records(bootstrap, DECIDED + ".dlq",
                                          lambda r: on_case(disclosure["case_id"])(r) or on_case(forged["case_id"])(r),
                                          count=2, timeout=30)
            [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(disclosure["case_id"]))
            [held] = await wait_for_events(bootstrap, "legal.requests.status", of_case(preservation["case_id"]))
            [closed] = await wait_for_events(bootstrap, "legal.requests.status", of_case(unknown["case_id"]),
                                             settle=2.0)
            cases = dict(await conn.fetch(
                "SELECT case_id, outcome FROM disclosure.cases WHERE case_id = ANY($1::text[])",
                [disclosure["case_id"], preservation["case_id"], unknown["case_id"], forged["case_id"]]))
            holds = await conn.fetchval("SELECT count(*) FROM disclosure.holds WHERE account_id = $1", keeper)
            packages = await conn.fetchval("SELECT count(*) FROM disclosure.packages WHERE case_id = $1",
                                           disclosure["case_id"])
            new_entries = [e for e in await entries(conn, "disclosure") if e.seq > before]
        finally:
            await conn.close()

    assert sorted(dict(r.headers)["dlq.reason"] for r in dead) == [b"bad_decision_signature", b"replayed_decision"]
    assert issued["data"]["account_id"] == discloser and packages == 1
    assert held["data"]["status"] == "preserved" and holds == 1
    assert closed["data"]["status"] == "no_data"
    assert cases == {disclosure["case_id"]: "disclosed", preservation["case_id"]: "preserved",
                     unknown["case_id"]: "no_data"}  # nothing for the forgery
    ours = {disclosure["case_id"]: "package.issued", preservation["case_id"]: "hold.placed",
            unknown["case_id"]: "case.closed_without_data"}
    assert {e.case_id: e.action for e in new_entries if e.case_id in ours} == ours
    # One statement for the batch's entries: its last is signed, and covers the ones before it.
    assert [e.signature is not None for e in new_entries if e.case_id in ours] == [False, False, True]
    result = await asyncio.to_thread(verify, bootstrap, database_url, "disclosure")
    assert result.exit_code == 0, result.output
