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
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    time: datetime
    data: dict[str, Any]
    binary_mode: bool = False
    # The CloudEvents distributed-tracing extension, if present and well-formed.
    trace: TraceContext | None = None
    # The schema-registry id of a Confluent-framed value; None for plain JSON.
    schema_id: int | None = None


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_event(event_type: str, source: str, data: dict[str, Any], *, event_id: str | None = None,
              time: datetime | None = None, trace: TraceContext | None = None) -> dict[str, Any]:
    """A structured-mode CloudEvent as a JSON-ready dict; `trace`: its distributed-tracing extension."""
    event = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": (time or now()).isoformat(),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if trace is not None:
        event.update(trace.attributes())
    event["data"] = data
    return event


def encode_structured(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return value, [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def decode(value: bytes | None, headers: list[tuple[str, bytes]] | tuple, *, allow_binary: bool) -> Envelope:
    """Decode a Kafka record into an Envelope or raise EventRejected with a reason code."""
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
