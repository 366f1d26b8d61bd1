"""The structured-mode fast path decodes exactly as the CloudEvents SDK path does, valid events or not.

`decode` reads the common shape of event itself and leaves everything else to
`decode_with_sdk`; for any record, both must return the same envelope or reject it
with the same reason and message.
"""
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warden.contract.envelope import (EventRejected, _decode_common_structured, decode, decode_with_payload,
                                      decode_with_sdk, encode_structured, new_event)

MISSING = object()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+02:00", "-05:30", "+14:00", "+23:59", "+24:00", "-12:60",
                           "z", "", "+0200", "+02"])
fractions = st.sampled_from(["", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567", "."])


@st.composite
def times(draw):
    kind = draw(st.sampled_from(["rfc3339", "rfc3339", "isoformat", "text", "other"]))
    if kind == "rfc3339":
        moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
        hour = draw(st.sampled_from([f"{moment.hour:02d}", "24", "23"]))
        second = draw(st.sampled_from([f"{moment.second:02d}", "60", "59"]))
        sep = draw(st.sampled_from(["T", "T", "t", " "]))
        return (f"{moment.year:04d}-{moment.month:02d}-{draw(st.integers(0, 32)):02d}{sep}{hour}:{moment.minute:02d}"
                f":{second}{draw(fractions)}{draw(offsets)}")
    if kind == "isoformat":
        moment = draw(st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-3, minutes=-30)),
                                                              timezone(timedelta(hours=5))])))
        return moment.isoformat(timespec=draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"])))
    if kind == "text":
        return draw(st.text(alphabet="0123456789-+:.TZ ٠١२", max_size=30))
    return draw(json_scalars)


aware_times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9998, 12, 30),
                          timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-3, minutes=-30)),
                                                     timezone(timedelta(hours=14)), timezone(timedelta(0))]))
names = st.text(min_size=1, max_size=12)
extension_names = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True).filter(lambda n: n not in ("id", "time", "type"))
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@st.composite
def valid_events(draw):
    """A CloudEvent the SDK path accepts, in any of the ways producers write one."""
    moment = draw(aware_times)
    time = moment.isoformat(timespec=draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"])))
    if draw(st.booleans()):
        time = time.replace("+00:00", "Z")
    event = {"specversion": "1.0", "id": draw(names), "source": draw(names), "type": draw(names), "time": time,
             "data": draw(objects)}
    for optional, values in [("datacontenttype", st.just("application/json")), ("subject", names),
                             ("dataschema", names)]:
        if draw(st.booleans()):
            event[optional] = draw(values)
    for name in draw(st.lists(extension_names, max_size=2)):
        event[name] = draw(json_values)
    if draw(st.booleans()):  # the distributed-tracing extension, well-formed or not
        event["traceparent"] = draw(TRACEPARENTS)
        if draw(st.booleans()):
            event["tracestate"] = draw(st.sampled_from(["vendor=value", "a=1,b=2", "", "é=1", 3, None]))
    return event


TRACEPARENTS = st.sampled_from([
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "00-short-01", "", 7, None, ["x"]])


# One attribute of a valid event, changed to something else (MISSING: left out).
CHANGES = {
    "specversion": st.sampled_from(["0.3", "1", 1.0, None, "", "1.0 ", MISSING]),
    "id": st.sampled_from(["", 7, None, ["a"], MISSING]),
    "source": st.sampled_from(["", 0, None, {}, MISSING]),
    "type": st.sampled_from(["", False, None, MISSING]),
    "time": st.one_of(times(), st.just(MISSING)),
    "datacontenttype": st.sampled_from(["text/plain", "", None, "application/json; charset=utf-8",
                                        "application/cloudevents+json", "APPLICATION/JSON", 1]),
    "subject": st.sampled_from(["", None, 3, ["s"]]),
    "dataschema": st.sampled_from(["", None, 0]),
    "data": st.one_of(objects.map(json.dumps), json_values, st.just(MISSING)),
    "data_base64": st.sampled_from(["eyJhIjogMX0=", "!!", ""]),
    "extension": st.sampled_from(["abc\n", "A", "data_x", "é", "", "a-b", " a"]),
}


@st.composite
def events(draw):
    """A valid event with up to two attributes changed: each check of the fast path meets its cases."""
    event = draw(valid_events())
    for attribute in draw(st.lists(st.sampled_from(sorted(CHANGES)), max_size=2, unique=True)):
        value = draw(CHANGES[attribute])
        if attribute == "extension":
            event[value] = draw(json_values)
        elif value is MISSING:
            event.pop(attribute, None)
        else:
            event[attribute] = value
    return dict(draw(st.permutations(list(event.items()))))  # members in any order, as other producers write them


def serialised(event, ensure_ascii: bool, indent) -> bytes:
    return json.dumps(event, ensure_ascii=ensure_ascii, indent=indent, allow_nan=True).encode()


def outcome(decoder, value, headers):
    try:
        envelope = decoder(value, headers, allow_binary=True)
    except EventRejected as rejected:
        return ("rejected", rejected.reason, rejected.error)
    return described(envelope)


def described(envelope):
    return ("decoded", envelope.id, envelope.source, envelope.type, envelope.time, envelope.time.utcoffset(),
            repr(envelope.data), envelope.binary_mode, envelope.trace)


def read_every_byte(event_type, data):
    """A payload reader as decode_with_payload needs one: it checks every byte of the data (here into a dict)."""
    try:
        return msgspec.json.decode(data, type=dict[str, Any])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def assert_same(value: bytes, headers=(("content-type", b"application/cloudevents+json"),)) -> None:
    """The fast path ends where the SDK path ends, and so does decode_with_payload when it accepts an event (its
    envelope's data built from the record's JSON when read)."""
    expected = outcome(decode_with_sdk, value, list(headers))
    assert outcome(decode, value, list(headers)) == expected
    both = decode_with_payload(value, list(headers), read_every_byte)
    if both is not None:
        envelope, payload = both
        assert envelope.raw_data is not None and described(envelope) == expected and payload == envelope.data


@settings(max_examples=700, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.booleans(), st.sampled_from([None, 1]))
def test_events_of_any_shape_decode_as_the_sdk_decodes_them(event, ensure_ascii, indent):
    assert_same(serialised(event, ensure_ascii, indent))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_damaged_bytes_decode_as_the_sdk_decodes_them(event, data):
    value = bytearray(serialised(event, ensure_ascii=False, indent=None))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(value)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from([b"\x00", b"\xff", b"\xed\xa0\x80", b"\\ud800", b"{", b"]", b'"', b",",
                                          b"\xef\xbb\xbf", b"NaN", b"1" * 5000, b"\x01", b" "]))
        if action == "insert":
            value[at:at] = byte
        elif action == "delete":
            del value[at:at + len(byte)]
        else:
            value[at:at + len(byte)] = byte
    assert_same(bytes(value))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_as_the_sdk_decodes_them(value):
    assert_same(value)


@pytest.mark.parametrize("value", [
    b'{"a":' * 300 + b"1" + b"}" * 300,                      # nested deeper than the fast parser goes
    json.dumps(new_event("t.v1", "/s", {"n": 0})).encode().replace(b'"n": 0', b'"n": ' + b"9" * 5000),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "2026-01-01T24:00:00Z"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "2026-02-30T00:00:00Z"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "20260101T000000Z"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "2026-01-01T00:00:00.1234567Z"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "2026-01-01T00:00:00-12:60"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "2026-01-01T00:00:00+05:99"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "time": "٢٠٢٦-01-01T00:00:00Z"}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "abc\n": 1}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "data_base64": "eyJhIjogMX0="}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": float("nan")})}).encode(),
    json.dumps({**new_event("t.v1", "/s", {"a": 1}), "a": 1, "a ": 2}).encode(),
    b'{"specversion":"1.0","id":"x","source":"/s","type":"t","time":"2026-01-01T00:00:00Z","data":{"a":1},'
    b'"data":{"b":2},"id":"y"}',                              # duplicate members: the last one counts
    b'\xef\xbb\xbf' + json.dumps(new_event("t.v1", "/s", {"a": 1})).encode(),
    json.dumps(new_event("t.v1", "/s", {"a": "\ud800"})).encode(),
])
def test_edge_cases_decode_as_the_sdk_decodes_them(value):
    assert_same(value)


@example(headers=[("ce_id", b"1")])
@given(st.lists(st.tuples(st.sampled_from(["content-type", "ce_id", "CE_type", "Ce_source", "x"]),
                          st.one_of(st.binary(max_size=5), st.none(), st.text(max_size=3))), max_size=4))
def test_any_headers_decode_as_the_sdk_decodes_them(headers):
    value, _ = encode_structured(new_event("t.v1", "/s", {"a": 1}))
    assert outcome(decode, value, headers) == outcome(decode_with_sdk, value, headers)


def test_warden_events_take_the_fast_path():
    """Not only equal: the common shape is read without the SDK (else the fast path would be dead code)."""
    value, _ = encode_structured(new_event("warden.moderation.report.submitted.v1", "/src", {"report_id": "r-1"}))
    envelope = _decode_common_structured(value)
    assert envelope is not None and envelope.data == {"report_id": "r-1"}
    assert _decode_common_structured(json.dumps({**json.loads(value), "time": "2026-01-01"}).encode()) is None
    traced = {**json.loads(value), "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    envelope = _decode_common_structured(json.dumps(traced).encode())
    assert envelope is not None and envelope.trace is not None
    assert _decode_common_structured(json.dumps({**traced, "partitionkey": "k"}).encode()) is None  # to the SDK
    envelope, payload = decode_with_payload(value, [], read_every_byte)
    assert bytes(envelope.raw_data) == b'{"report_id":"r-1"}' and payload == {"report_id": "r-1"}
    assert envelope == decode(value, [], allow_binary=False)
    not_an_object = json.dumps({**json.loads(value), "data": ["r-1"]}).encode()
    assert decode_with_payload(not_an_object, [], read_every_byte) is None  # decode says why it refuses it
    assert decode_with_payload(value, [], lambda event_type, data: None) is None  # the reader refused the data
