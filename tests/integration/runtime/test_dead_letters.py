"""Every class of bad input lands in the DLQ with its reason, and the consumer keeps consuming."""
from __future__ import annotations

import json
import uuid

from tests.support.kafka import produce_event, produce_raw, wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority
from warden.contract.envelope import MAX_EVENT_BYTES, encode_structured, new_event

TOPIC = "legal.requests.submitted"
SUBMITTED = "warden.legal.request.submitted.v1"


def envelope_bytes(data, **overrides) -> bytes:
    event = new_event(SUBMITTED, "/tests", data)
    event.update(overrides)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


async def test_each_class_of_bad_input_is_dead_lettered_with_its_reason(bootstrap, database_url):
    authority, stranger = new_authority(), new_authority()
    await register_authority(bootstrap, authority)
    good_before = signed(request_data(authority), authority["private_key"])
    good_after = signed(request_data(authority), authority["private_key"])
    missing_fields = {"request_id": "x", "authority_id": authority["authority_id"]}
    huge = signed(request_data(authority, offense={"category": "fraud", "statute": "s",
                                                   "description": "d" * MAX_EVENT_BYTES}), authority["private_key"])
    bad_inputs = {
        "undecodable": b"\x00\xff not json at all",
        "invalid_envelope": envelope_bytes(good_before, id=None),
        "unknown_type": envelope_bytes(good_before, type="warden.something.else.v1"),
        "invalid_data": envelope_bytes(missing_fields),
        "oversized": envelope_bytes(huge),
        "unknown_authority": envelope_bytes(signed(request_data(stranger), stranger["private_key"])),
        "bad_signature": envelope_bytes(dict(good_before, request_id="tampered-" + uuid.uuid4().hex[:6])),
    }
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_event(bootstrap, TOPIC, SUBMITTED, good_before)
        sent = {}
        for reason, value in bad_inputs.items():
            metadata = await produce_raw(bootstrap, TOPIC, value, key=b"k",
                                         headers=[("content-type", b"application/cloudevents+json")])
            sent[(metadata.partition, metadata.offset)] = reason
        await produce_event(bootstrap, TOPIC, SUBMITTED, good_after)

        def ours(record) -> bool:
            headers = dict(record.headers)
            return (int(headers["dlq.partition"]), int(headers["dlq.offset"])) in sent

        dead = await wait_for_records(bootstrap, f"{TOPIC}.dlq", ours, count=len(sent))
        received = await wait_for_events(
            bootstrap, "legal.requests.received",
            lambda e: e["data"]["request"]["request_id"] in (good_before["request_id"], good_after["request_id"]),
            count=2)
    by_reason = {}
    for record in dead:
        headers = dict(record.headers)
        position = (int(headers["dlq.partition"]), int(headers["dlq.offset"]))
        by_reason[headers["dlq.reason"].decode()] = record
        assert headers["dlq.reason"].decode() == sent[position]
        assert headers["dlq.service"] == b"intake" and headers["dlq.topic"] == TOPIC.encode()
        assert headers["dlq.error"]
    assert set(by_reason) == set(bad_inputs)
    # the original bytes, unchanged
    assert by_reason["undecodable"].value == bad_inputs["undecodable"]
    assert by_reason["oversized"].value == bad_inputs["oversized"]
    assert len(received) == 2  # the good events on both sides were processed


async def test_binary_mode_requests_are_accepted(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()), ("ce_source", b"/gateway"),
               ("ce_type", SUBMITTED.encode()), ("ce_time", b"2026-11-01T10:00:00Z"),
               ("content-type", b"application/json")]
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_raw(bootstrap, TOPIC, json.dumps(data).encode(), key=data["authority_id"].encode(),
                          headers=headers)
        [received] = await wait_for_events(
            bootstrap, "legal.requests.received",
            lambda e: e["data"]["request"]["request_id"] == data["request_id"])
    assert received["data"]["request"]["authority_id"] == authority["authority_id"]


async def test_confluent_framed_requests_are_received(bootstrap, database_url):
    """A publisher's schema-registry JSON serializer puts a zero byte and a 4-byte schema id before the event."""
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    value, headers = encode_structured(new_event(SUBMITTED, "/gateway", data))
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_raw(bootstrap, TOPIC, b"\x00" + (42).to_bytes(4, "big") + value,
                          key=data["authority_id"].encode(), headers=headers)
        [received] = await wait_for_events(
            bootstrap, "legal.requests.received",
            lambda e: e["data"]["request"]["request_id"] == data["request_id"])
    assert received["data"]["submitted"] == data


async def test_invalid_status_tells_the_authority_why(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority, data_categories=[]), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        value, headers = encode_structured(new_event(SUBMITTED, "/tests", data))
        await produce_raw(bootstrap, TOPIC, value, headers=headers)
        # Why, in words, where only the authority reads it (legal.requests.progress, the authority API).
        [status] = await wait_for_events(bootstrap, "legal.requests.progress",
                                         lambda e: e["data"]["request_id"] == data["request_id"])
    assert status["data"]["status"] == "invalid"
    assert status["data"]["reasons"][0]["code"] == "invalid_data"
    assert "data_categories" in status["data"]["reasons"][0]["message"]


async def test_oversized_request_is_still_attributed_to_its_authority(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority, offense={"category": "fraud", "statute": "s",
                                                   "description": "d" * MAX_EVENT_BYTES}), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_raw(bootstrap, TOPIC, envelope_bytes(data), key=authority["authority_id"].encode())
        [status] = await wait_for_events(bootstrap, "legal.requests.status",
                                         lambda e: e["data"]["request_id"] == data["request_id"])
    assert status["data"]["status"] == "invalid"
    assert status["data"]["reasons"][0]["code"] == "oversized"


async def test_a_dead_letter_too_large_to_publish_goes_as_a_prefix_and_is_kept_whole(bootstrap, database_url):
    import asyncpg

    from warden.runtime.dead_letters import DLQ_VALUE_LIMIT

    huge = b'{"specversion": "1.0", "data": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    after = signed(request_data(authority := new_authority()), authority["private_key"])
    await register_authority(bootstrap, authority)
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        metadata = await produce_raw(bootstrap, TOPIC, huge, key=b"k")
        await produce_event(bootstrap, TOPIC, SUBMITTED, after)  # what comes behind it flows

        def ours(record) -> bool:
            headers = dict(record.headers)
            return (int(headers["dlq.partition"]), int(headers["dlq.offset"])) == (metadata.partition,
                                                                                   metadata.offset)
        [dead] = await wait_for_records(bootstrap, f"{TOPIC}.dlq", ours)
        await wait_for_events(bootstrap, "legal.requests.received",
                              lambda e: e["data"]["request"]["request_id"] == after["request_id"])
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval('SELECT value FROM intake.dead_letters WHERE topic = $1 AND partition = $2'
                                   ' AND "offset" = $3', TOPIC, metadata.partition, metadata.offset)
    finally:
        await conn.close()
    headers = dict(dead.headers)
    assert dead.value == huge[:DLQ_VALUE_LIMIT]
    assert headers["dlq.truncated"] == b"value" and headers["dlq.original_bytes"] == str(len(huge)).encode()
    assert headers["dlq.reason"] == b"oversized"
    assert kept == huge
