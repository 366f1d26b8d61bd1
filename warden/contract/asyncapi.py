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
from warden.contract.topics import TOPICS

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


def build_document() -> dict[str, Any]:
    models = sorted({m for m in EVENT_MODELS.values()}, key=lambda m: m.__name__)
    _, schema = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(schema.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        name = _message_name(event_type)
        schemas[name + "Event"] = _envelope(event_type, REF.format(model=model.__name__))
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": STRUCTURED_CONTENT_TYPE,
            "payload": {"$ref": REF.format(model=name + "Event")},
        }
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
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Warden event contract",
            "version": "1.0.0",
            "description": "Topics and CloudEvents of Warden (DESIGN.md, Event contract v1). "
                           "Generated from warden/contract by `make asyncapi`; do not edit by hand. "
                           "Inbound topics also accept Kafka binary mode (ce_* headers). Every consumed "
                           "topic has a `<topic>.dlq` holding the original bytes with dlq.* headers.",
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
