"""CloudEvents 1.0 envelopes on Kafka.

Warden writes structured mode (the whole event as JSON in the value). Reading
goes through the CloudEvents SDK's Kafka binding, which detects binary mode
(`ce_*` headers) too; only inbound topics accept binary mode. The distributed-tracing
extension (`traceparent`, `tracestate`) is read in both modes and written when the
event was derived from one that had it (warden/runtime/tracing.py).

A value may also come in the Confluent schema-registry wire format, as a JSON serializer
backed by a schema registry writes it: a zero byte, the schema id (4 bytes, big-endian),
then the JSON. The frame is taken off before decoding and the schema id kept on the
envelope (`Envelope.schema_id`); JSON never starts with a zero byte, so one byte tells.

A structured event of the common shape (RFC 3339 `time`, `data` a JSON object,
the standard attributes and the tracing extension) is read by a fast path instead:
one msgspec pass that parses the JSON and checks the attributes' types in C, where
the SDK path parses the JSON twice in Python and `time` with dateutil (a report:
~4 µs instead of 35). The fast path only ever accepts what the SDK path accepts,
with the same result; anything else (invalid events and events with other extension
attributes included) goes the SDK path, which decides and names the reason. A
property test holds the two paths equal (tests/unit/contract/test_envelope_fast_path.py). A Confluent-framed value
is not JSON, so it always goes the SDK path, which takes the frame off.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from warden.contract.trace_context import TraceContext

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
MAX_EVENT_BYTES = 64 * 1024
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_BYTES = 5
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time")
_JSON = JSONFormat()


class EventRejected(Exception):
    """An event that can never be processed: it goes to the DLQ with `reason`.

    `error` must never hold personal data: it lands in DLQ headers and logs.
    """

    def __init__(self, reason: str, error: str):
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


class UnknownYet(EventRejected):
    """Rejected for want of something a `catch_up_first` subscription brings (an authority or its key): the
    runtime reads those topics to their current end and handles the event again before it dead-letters it.
    What was registered before the event was written is then known, whatever order the partitions came in."""


class Envelope:
    """A decoded CloudEvent, never changed once decoded. A class with slots, not a dataclass: every event builds
    one (a frozen dataclass's __init__ costs three times a plain one's), and its `data` may come as the record's
    JSON (`raw_data`, from `decode_with_payload`), decoded into a dict only when first read: a consumer that
    decodes the payload straight from that JSON never builds the dict."""

    __slots__ = ("id", "source", "type", "time", "_data", "raw_data", "binary_mode", "trace", "schema_id")

    def __init__(self, id: str, source: str, type: str, time: datetime, data: dict[str, Any] | None = None,
                 binary_mode: bool = False, trace: TraceContext | None = None, schema_id: int | None = None,
                 raw_data: msgspec.Raw | None = None):
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self._data = data
        self.raw_data = raw_data  # the data's JSON object as the record holds it (decode_with_payload)
        self.binary_mode = binary_mode
        # The CloudEvents distributed-tracing extension, if present and well-formed.
        self.trace = trace
        # The schema-registry id of a Confluent-framed value; None for plain JSON.
        self.schema_id = schema_id

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = _DATA.decode(self.raw_data)
        return self._data

    def _values(self) -> tuple:
        return self.id, self.source, self.type, self.time, self.data, self.binary_mode, self.trace, self.schema_id

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if isinstance(other, Envelope) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by value, and its data is a dict

    def __repr__(self) -> str:
        return (f"Envelope(id={self.id!r}, source={self.source!r}, type={self.type!r}, time={self.time!r}, "
                f"binary_mode={self.binary_mode!r}, trace={self.trace!r}, schema_id={self.schema_id!r})")


def now() -> datetime:
    return datetime.now(timezone.utc)


def random_id() -> str:
    """A random (version 4) UUID in its text form, what str(uuid.uuid4()) gives, at a third of the cost:
    every emitted event takes one, and uuid.UUID builds and formats an object to get there."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # the RFC 9562 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(moment: datetime) -> str:
    """`moment.isoformat()`: for a datetime in UTC, at a third of its cost (orjson writes the same text;
    tests/unit/contract/test_envelope.py holds them equal)."""
    if moment.tzinfo is timezone.utc:
        return orjson.dumps(moment)[1:-1].decode()
    return moment.isoformat()


def new_event(event_type: str, source: str, data: dict[str, Any], *, event_id: str | None = None,
              time: datetime | None = None, trace: TraceContext | None = None) -> dict[str, Any]:
    """A structured-mode CloudEvent as a JSON-ready dict; `trace`: its distributed-tracing extension."""
    event = {
        "specversion": "1.0",
        "id": event_id or random_id(),
        "source": source,
        "type": event_type,
        "time": rfc3339(time or now()),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if trace is not None:
        event.update(trace.attributes())
    event["data"] = data
    return event


def encode_structured(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The structured-mode record of `event`: compact UTF-8 JSON, what is not JSON written as its str()."""
    try:
        value = orjson.dumps(event, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
    except orjson.JSONEncodeError:  # what orjson refuses (an int past 64 bits, a non-str key): the stdlib's form
        value = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return value, [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def decode(value: bytes | None, headers: list[tuple[str, bytes]] | tuple, *, allow_binary: bool) -> Envelope:
    """Decode a Kafka record into an Envelope or raise EventRejected with a reason code."""
    if value is not None and len(value) <= MAX_EVENT_BYTES and not _binary_mode(headers):
        fast = _decode_common_structured(value)
        if fast is not None:
            return fast
    return decode_with_sdk(value, headers, allow_binary=allow_binary)


def _binary_mode(headers: list[tuple[str, bytes]] | tuple) -> bool:
    """Whether a record has CloudEvents attribute headers (a loop: a generator costs more for a header or two)."""
    for name, _ in headers or ():
        if isinstance(name, str) and name[:3].lower() == "ce_":
            return True
    return False


def decode_with_sdk(value: bytes | None, headers: list[tuple[str, bytes]] | tuple, *,
                    allow_binary: bool) -> Envelope:
    """`decode` through the CloudEvents SDK, for every mode and every input: what the fast path must equal."""
    if value is None:
        raise EventRejected("undecodable", "record has no value (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise EventRejected("oversized", f"event is {len(value)} bytes, limit is {MAX_EVENT_BYTES}")
    value, schema_id = unframe(value)
    header_map: dict[str, bytes] = {}
    for name, raw in headers or ():
        if isinstance(name, str) and isinstance(raw, (bytes, bytearray)):
            header_map[name] = bytes(raw)
    binary = any(name.lower().startswith("ce_") for name in header_map)
    if binary and not allow_binary:
        raise EventRejected("unsupported_mode", "binary-mode CloudEvents are accepted on inbound topics only")
    if binary:
        present = {name.lower()[3:]: raw for name, raw in header_map.items() if name.lower().startswith("ce_")}
    else:
        present = _require_json_object(value)
    # The SDK fills a missing id or time with fresh values; the inbox needs the sender's own.
    missing = [a for a in REQUIRED_ATTRIBUTES if not present.get(a)]
    if missing:
        raise EventRejected("invalid_envelope", f"required attribute(s) missing: {', '.join(missing)}")
    try:
        message = ce_kafka.KafkaMessage(headers=header_map, key=None, value=value)
        event = ce_kafka.from_kafka(message, _JSON)
    except Exception as exc:  # the SDK raises many types; all mean "not a CloudEvent"
        raise EventRejected("invalid_envelope", _describe_sdk_error(exc)) from None
    attributes = event.get_attributes()
    if attributes.get("specversion") != "1.0":
        raise EventRejected("invalid_envelope", "specversion must be 1.0")
    event_time = attributes.get("time")
    if not isinstance(event_time, datetime):
        raise EventRejected("invalid_envelope", "required attribute 'time' is missing")
    content_type = attributes.get("datacontenttype")
    if content_type not in (None, DATA_CONTENT_TYPE):
        raise EventRejected("invalid_envelope", f"datacontenttype must be {DATA_CONTENT_TYPE}")
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise EventRejected("undecodable", "data is not JSON") from None
    if not isinstance(data, dict):
        raise EventRejected("invalid_data", "data must be a JSON object")
    return Envelope(
        id=str(attributes["id"]), source=str(attributes["source"]), type=str(attributes["type"]),
        time=event_time, data=data, binary_mode=binary, schema_id=schema_id,
        trace=TraceContext.parse(present.get("traceparent"), present.get("tracestate")),
    )


def unframe(value: bytes) -> tuple[bytes, int | None]:
    """The JSON of a value and its schema-registry id if it is Confluent-framed (None if not)."""
    if not value or value[0] != CONFLUENT_MAGIC:
        return value, None
    if len(value) < CONFLUENT_HEADER_BYTES:
        raise EventRejected("undecodable", "Confluent-framed value shorter than its 5-byte header")
    return value[CONFLUENT_HEADER_BYTES:], int.from_bytes(value[1:CONFLUENT_HEADER_BYTES], "big")

# RFC 3339 as Warden and most producers write it; other ISO 8601 forms dateutil reads go the SDK path.
# datetime.fromisoformat and pydantic read it as the same moment with the same offset (contract/structs.py).
# An offset's minutes stop at 59: fromisoformat takes "+05:99" as 6 h 39 min, dateutil and pydantic refuse it.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:[0-5]\d)", re.ASCII)
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _CommonEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A structured CloudEvent of the common shape: any other member (an extension attribute other than the
    tracing extension's) fails the decode, and the SDK path reads the event."""
    specversion: Literal["1.0"]
    id: _NonEmpty
    source: _NonEmpty
    type: _NonEmpty
    time: str
    data: dict[str, Any]
    datacontenttype: Literal["application/json"] = DATA_CONTENT_TYPE
    dataschema: _NonEmpty | msgspec.UnsetType = msgspec.UNSET
    subject: _NonEmpty | msgspec.UnsetType = msgspec.UNSET
    traceparent: Any = msgspec.UNSET
    tracestate: Any = None


class _DeferredEvent(_CommonEvent, forbid_unknown_fields=True, gc=False):
    """The common shape with its data left as JSON: msgspec checks its syntax, does not build it."""
    data: msgspec.Raw


_COMMON_EVENT = msgspec.json.Decoder(_CommonEvent)
_DEFERRED_EVENT = msgspec.json.Decoder(_DeferredEvent)
_DATA = msgspec.json.Decoder(dict[str, Any])


def _decode_common_structured(value: bytes) -> Envelope | None:
    """The Envelope of a structured event of the common shape, exactly as the SDK path would return
    it; None for anything else (the SDK path then decides)."""
    try:
        event = _COMMON_EVENT.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    return _envelope_of(event, event.data, None)


def decode_with_payload(value: bytes | None, headers: list[tuple[str, bytes]] | tuple,
                        read_payload: Callable[[str, msgspec.Raw], Any]) -> tuple[Envelope, Any] | None:
    """`decode` and the payload in one pass, for a structured event of the common shape: the envelope `decode`
    returns, and `read_payload(type, data's JSON)`, which decodes the data straight from the record (None if it
    cannot). The envelope's `data` is built from that JSON only when read. `read_payload` must check every byte
    of it, as decoding it into a dict does (no member skipped unread): then this accepts only what `decode`
    accepts, with the same result. None for anything else: `decode` then decides, and says why it refuses one."""
    if value is None or len(value) > MAX_EVENT_BYTES or _binary_mode(headers):
        return None
    try:
        event = _DEFERRED_EVENT.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if memoryview(event.data)[0] != 0x7B:  # "{": a JSON object
        return None
    envelope = _envelope_of(event, None, event.data)
    if envelope is None:
        return None
    payload = read_payload(envelope.type, event.data)
    return None if payload is None else (envelope, payload)


def _envelope_of(event: _CommonEvent, data: dict[str, Any] | None, raw_data: msgspec.Raw | None) -> Envelope | None:
    if RFC3339.fullmatch(event.time) is None:
        return None
    try:
        event_time = datetime.fromisoformat(event.time)
    except ValueError:  # a date or time out of range: the SDK path says so
        return None
    trace = None if event.traceparent is msgspec.UNSET else TraceContext.parse(event.traceparent, event.tracestate)
    return Envelope(event.id, event.source, event.type, event_time, data, False, trace, None, raw_data)


def _require_json_object(value: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EventRejected("undecodable", "value is not UTF-8 JSON") from None
    if not isinstance(parsed, dict):
        raise EventRejected("undecodable", "value is not a JSON object")
    return parsed


def _describe_sdk_error(exc: Exception) -> str:
    # SDK messages name attributes, never payload values; keep them short for headers.
    text = str(exc).replace("\n", " ")
    return (type(exc).__name__ + ": " + text)[:300]
