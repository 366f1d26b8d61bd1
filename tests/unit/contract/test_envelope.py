"""Decoding CloudEvents from Kafka records, and the reason codes of what cannot be decoded."""
import json
import uuid
from datetime import timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.contract.envelope import (MAX_EVENT_BYTES, EventRejected, decode, encode_structured, new_event, random_id,
                                      rfc3339)


def structured(**overrides) -> bytes:
    event = new_event("t.v1", "/src", {"a": 1})
    event.update(overrides)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


BINARY_HEADERS = [("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"/gw"), ("ce_type", b"t.v1"),
                  ("ce_time", b"2026-01-01T00:00:00Z"), ("content-type", b"application/json")]


def test_structured_round_trip():
    value, headers = encode_structured(new_event("t.v1", "/src", {"a": 1}, event_id="e-1"))
    assert dict(headers)["content-type"] == b"application/cloudevents+json"
    envelope = decode(value, headers, allow_binary=False)
    assert (envelope.id, envelope.source, envelope.type, envelope.data) == ("e-1", "/src", "t.v1", {"a": 1})
    assert not envelope.binary_mode


@pytest.mark.parametrize("data", [
    {"text": "é \u2028 \x01 \"q\" 😀", "n": [1, -2, 2**63 - 1, 1.5, True, None], "nested": {"k": ["v"]}},
    {"big": 2**70},  # past 64 bits: orjson refuses it, the standard library writes it
    {1: "a non-str key"},
])
def test_structured_values_are_the_json_the_standard_library_writes(data):
    event = new_event("t.v1", "/src", data, event_id="e-1")
    value, _ = encode_structured(event)
    assert value == json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def test_binary_mode_is_read_on_inbound_topics():
    envelope = decode(b'{"a": 2}', BINARY_HEADERS, allow_binary=True)
    assert envelope.binary_mode and envelope.id == "e-1" and envelope.data == {"a": 2}


@pytest.mark.parametrize("value, headers, allow_binary, reason", [
    (b"\xff\xfe garbage", [], False, "undecodable"),
    (b"[1, 2]", [], False, "undecodable"),
    (b'{"truncated": ', [], False, "undecodable"),
    (None, [], False, "undecodable"),
    (structured(id=None), [], False, "invalid_envelope"),
    (structured(time=None), [], False, "invalid_envelope"),
    (structured(specversion="0.3"), [], False, "invalid_envelope"),
    (structured(time="yesterday"), [], False, "invalid_envelope"),
    (structured(data=[1]), [], False, "invalid_data"),
    (structured(datacontenttype="text/plain", data="x"), [], False, "invalid_envelope"),
    (b'{"a": 2}', BINARY_HEADERS, False, "unsupported_mode"),
    (b'{"a": 2}', [h for h in BINARY_HEADERS if h[0] != "ce_id"], True, "invalid_envelope"),
    (b"x" * (MAX_EVENT_BYTES + 1), [], False, "oversized"),
])
def test_rejections_name_their_reason(value, headers, allow_binary, reason):
    with pytest.raises(EventRejected) as caught:
        decode(value, headers, allow_binary=allow_binary)
    assert caught.value.reason == reason
    assert caught.value.error


def test_deeply_nested_json_is_rejected_not_crashing():
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(EventRejected) as caught:
        decode(deep[:MAX_EVENT_BYTES], [], allow_binary=False)
    assert caught.value.reason == "undecodable"


def confluent(schema_id: int, payload: bytes) -> bytes:
    """A value as a schema-registry JSON serializer writes it: magic byte 0, schema id (4 bytes, big-endian)."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def test_confluent_framed_json_is_decoded_with_its_schema_id():
    value, headers = encode_structured(new_event("t.v1", "/src", {"a": 1}, event_id="e-1"))
    framed = decode(confluent(70001, value), headers, allow_binary=False)
    assert (framed.id, framed.data, framed.schema_id) == ("e-1", {"a": 1}, 70001)
    assert decode(value, headers, allow_binary=False).schema_id is None
    binary = decode(confluent(7, b'{"a": 2}'), BINARY_HEADERS, allow_binary=True)
    assert binary.binary_mode and binary.data == {"a": 2} and binary.schema_id == 7


@pytest.mark.parametrize("value", [b"\x00\x00\x01", b"\x00\x00\x00\x00\x01", b"\x00\x00\x00\x00\x01not json",
                                   confluent(1, b"\x00\x00\x00\x00\x01{}")])
def test_a_broken_confluent_frame_is_undecodable(value):
    with pytest.raises(EventRejected) as rejected:
        decode(value, [], allow_binary=False)
    assert rejected.value.reason == "undecodable"


def test_event_ids_are_random_version_4_uuids_in_their_canonical_text():
    ids = [random_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # every one of the 122 random bits varies (a fixed or lost bit would show as a constant column)
    bits = [uuid.UUID(text).int for text in ids]
    fixed = (0xF << 76) | (0x3 << 62)
    assert all(any(b >> i & 1 for b in bits) and not all(b >> i & 1 for b in bits)
               for i in range(128) if not fixed >> i & 1)
    assert new_event("t.v1", "/tests", {})["id"] != new_event("t.v1", "/tests", {})["id"]


@given(st.datetimes(timezones=st.just(timezone.utc)) | st.datetimes(timezones=st.timezones())
       | st.datetimes(timezones=st.none()))
def test_an_event_time_is_written_as_isoformat_writes_it(moment):
    assert rfc3339(moment) == moment.isoformat()
