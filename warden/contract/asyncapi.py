"""Generates docs/asyncapi.yaml (AsyncAPI 3.0) from the topic registry and the event models.

The document is derived, never edited by hand: `make asyncapi` rewrites it, and a
test fails when the committed file and the models disagree.
"""
from __future__ import annotations

import re
import sys
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from warden.contract.envelope import DATA_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE
from warden.contract.events import EVENT_MODELS
from warden.contract.examples import EXAMPLES
from warden.contract.topics import DLQ_PARTITIONS, DLQ_RETENTION_MS, TOPIC_OF_TYPE, TOPICS, Topic

KAFKA_BINDING_VERSION = "0.5.0"
# Headers a replayed dead letter carries (warden/runtime/dead_letters.py, `warden dlq replay`).
REPLAY_HEADERS = {
    "replay.dlq_topic": "the DLQ the letter was replayed from",
    "replay.dlq_partition": "its partition there",
    "replay.dlq_offset": "its offset there",
    "replay.by": "who replayed it",
    "replay.at": "when, RFC 3339 UTC",
}
DLQ_HEADERS = {
    "dlq.reason": "why the event could not be handled: a reason code (undecodable, invalid_envelope, "
                  "invalid_data, unknown_type, unknown_authority, bad_signature, handler_error, ...)",
    "dlq.error": "what was wrong, at most 1000 bytes, never personal data",
    "dlq.service": "the service that dead-lettered it",
    "dlq.topic": "the topic it was read from",
    "dlq.partition": "its partition there",
    "dlq.offset": "its offset there",
    "dlq.truncated": "present when the record was too large to publish again: which parts (value, key, "
                     "headers) carry a prefix; the service keeps the whole original for replay",
    "dlq.original_bytes": "with dlq.truncated: the original value's size",
}

REF = "#/components/schemas/{model}"


def _camel(name: str) -> str:
    parts = re.split(r"[^a-zA-Z0-9]+", name)
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _message_name(event_type: str) -> str:
    # warden.legal.request.submitted.v1 -> LegalRequestSubmittedV1
    return "".join(p[:1].upper() + p[1:] for p in event_type.removeprefix("warden.").split("."))


def _envelope(event_type: str, data_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0, Kafka structured mode",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": event_type},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": DATA_CONTENT_TYPE},
            "traceparent": {"type": "string", "description": "CloudEvents distributed-tracing extension: the "
                            "W3C traceparent of the event this one derives from; carried on to every event "
                            "derived from this one"},
            "tracestate": {"type": "string", "description": "CloudEvents distributed-tracing extension: the "
                           "W3C tracestate that goes with traceparent"},
            "data": {"$ref": data_ref},
        },
    }


def _string_headers(described: dict[str, str]) -> dict[str, Any]:
    return {name: {"type": "string", "description": text} for name, text in described.items()}


def _headers(topic: Topic) -> dict[str, Any]:
    """The Kafka headers of an event on `topic`: structured mode's content type; on a consumed topic,
    those of a replayed dead letter; on an inbound one, the binary-mode `ce_*` alternative."""
    properties: dict[str, Any] = {"content-type": {
        "const": STRUCTURED_CONTENT_TYPE, "description": "structured mode: the whole CloudEvent is the value"}}
    if topic.consumers:
        properties.update(_string_headers(REPLAY_HEADERS))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if topic.inbound:
        schema["description"] = (
            "Inbound topics also accept binary mode: the attributes in `ce_*` headers (ce_specversion, ce_id, "
            "ce_source, ce_type, ce_time), the data as the value, content-type application/json. A value "
            "may carry the Confluent schema-registry frame (a zero byte and a 4-byte big-endian schema id "
            "before the JSON).")
        schema["patternProperties"] = {"^ce_": {"type": "string"}}
    return schema


def _key(topic: Topic) -> dict[str, Any]:
    return {"type": "string", "description": f"the event data's `{topic.key}`"}


def _example(event_type: str, topic: Topic) -> dict[str, Any]:
    return {"name": _message_name(event_type) + "Example", "summary": f"On {topic.name}",
            "headers": {"content-type": STRUCTURED_CONTENT_TYPE},
            "payload": {"specversion": "1.0", "id": "0d6b2f4e-9a1c-4e3b-8f7d-5c2a1b0e9d8f",
                        "source": "/warden/" + topic.producer.split(",")[0].strip(), "type": event_type,
                        "time": "2026-11-20T10:00:00+00:00", "datacontenttype": DATA_CONTENT_TYPE,
                        "data": EXAMPLES[event_type]}}


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead-letter", "title": "DeadLetter",
        "summary": "An event a service could not handle: the original record, bytes unchanged",
        "description": "Value and key are those of the original record (a bounded prefix when it was too "
                       "large, see dlq.truncated). `warden dlq list|show|replay` reads them and puts them back.",
        "headers": {"type": "object", "required": ["dlq.reason", "dlq.error", "dlq.service", "dlq.topic",
                                                    "dlq.partition", "dlq.offset"],
                    "properties": _string_headers(DLQ_HEADERS)},
        "payload": {"description": "the original value, whatever it held"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the original record's key"},
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def build_document() -> dict[str, Any]:
    models = sorted({m for m in EVENT_MODELS.values()}, key=lambda m: m.__name__)
    _, schema = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(schema.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        name = _message_name(event_type)
        topic = TOPIC_OF_TYPE[event_type]
        schemas[name + "Event"] = _envelope(event_type, REF.format(model=model.__name__))
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": STRUCTURED_CONTENT_TYPE,
            "headers": _headers(topic),
            "payload": {"$ref": REF.format(model=name + "Event")},
            "bindings": {"kafka": {"key": _key(topic), "bindingVersion": KAFKA_BINDING_VERSION}},
            "examples": [_example(event_type, topic)],
        }
    messages["DeadLetter"] = _dead_letter_message()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS.values():
        channel_id = _camel(topic.name)
        channel_messages = {_message_name(t): {"$ref": f"#/components/messages/{_message_name(t)}"}
                            for t in topic.event_types}
        config: dict[str, Any] = {"retention.ms": topic.retention_ms}
        if topic.compacted:
            config["cleanup.policy"] = ["compact"]
        channels[channel_id] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Key: `{topic.key}`. Written by: {topic.producer}.",
            "messages": channel_messages,
            "bindings": {"kafka": {"partitions": topic.partitions, "topicConfiguration": config}},
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel_messages]
        if topic.consumers:
            operations["receive" + channel_id[:1].upper() + channel_id[1:]] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": "Consumed by " + ", ".join(topic.consumers), "messages": refs}
        if not topic.inbound:
            operations["send" + channel_id[:1].upper() + channel_id[1:]] = {
                "action": "send", "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": "Produced by " + topic.producer, "messages": refs}
    for topic in TOPICS.values():
        if not topic.consumers:
            continue
        channel_id = _camel(topic.dlq)
        channels[channel_id] = {
            "address": topic.dlq,
            "title": topic.dlq,
            "description": f"Dead letters of {topic.name}: each event a consumer could not handle, with the "
                           "reason in dlq.* headers. Written by: " + ", ".join(topic.consumers) + ".",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {"kafka": {"partitions": DLQ_PARTITIONS,
                                   "topicConfiguration": {"retention.ms": DLQ_RETENTION_MS}}},
        }
        operations["send" + channel_id[:1].upper() + channel_id[1:]] = {
            "action": "send", "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": "Dead-lettered by " + ", ".join(topic.consumers),
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/DeadLetter"}]}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Warden event contract",
            "version": "1.0.0",
            "description": "Topics and CloudEvents of Warden (DESIGN.md, Event contract v1). "
                           "Generated from warden/contract by `make asyncapi`; do not edit by hand. "
                           "Inbound topics also accept Kafka binary mode (ce_* headers) and Confluent-framed "
                           "JSON. Every consumed topic has a `<topic>.dlq` holding the original bytes with "
                           "dlq.* headers; `warden dlq replay` puts them back with replay.* headers.",
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
