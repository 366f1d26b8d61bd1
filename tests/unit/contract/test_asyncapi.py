"""docs/asyncapi.yaml is the contract published to integrators: it must match the models."""
import json
from pathlib import Path

import jsonschema
import yaml

from warden.contract.asyncapi import build_document, render
from warden.contract.events import EVENT_MODELS
from warden.contract.topics import TOPICS
from warden.runtime.dead_letters import dlq_row  # noqa: F401 (the DLQ headers documented are the ones it writes)

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_models():
    assert DOC.read_text() == render(), "docs/asyncapi.yaml is stale: run `make asyncapi`"


def test_document_is_valid_asyncapi_3():
    schema = json.loads((ROOT / "tests" / "schemas" / "asyncapi-3.0.0.json").read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(DOC.read_text())))
    assert errors == []


def test_every_topic_and_event_type_is_documented():
    doc = build_document()
    addresses = {c["address"]: c for c in doc["channels"].values()}
    assert set(addresses) == set(TOPICS) | {t.dlq for t in TOPICS.values() if t.consumers}
    documented_types = {m["name"] for m in doc["components"]["messages"].values()}
    assert documented_types == set(EVENT_MODELS) | {"dead-letter"}
    for topic in TOPICS.values():
        names = {doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
                 for ref in addresses[topic.name]["messages"].values()}
        assert names == set(topic.event_types)


def test_payload_schemas_list_every_model_field():
    schemas = build_document()["components"]["schemas"]
    for model in EVENT_MODELS.values():
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)


def test_every_message_has_its_key_headers_and_an_example_of_its_data():
    messages = build_document()["components"]["messages"]
    for event_type, model in EVENT_MODELS.items():
        message = next(m for m in messages.values() if m["name"] == event_type)
        topic = next(t for t in TOPICS.values() if event_type in t.event_types)
        assert topic.key in message["bindings"]["kafka"]["key"]["description"]
        assert message["headers"]["properties"]["content-type"]["const"] == "application/cloudevents+json"
        assert ("replay.dlq_offset" in message["headers"]["properties"]) == bool(topic.consumers)
        [example] = message["examples"]
        assert example["payload"]["type"] == event_type
        model.model_validate(example["payload"]["data"])


def test_dead_letter_headers_are_the_ones_the_runtime_writes():
    from aiokafka.structs import ConsumerRecord

    from warden.contract.envelope import EventRejected

    record = ConsumerRecord("legal.requests.submitted", 0, 7, 0, 0, b"k", b"v" * (300 * 1024), None, 1, 1, [])
    written = {name for name, _ in dlq_row("intake", record, EventRejected("undecodable", "x")).headers}
    documented = build_document()["components"]["messages"]["DeadLetter"]["headers"]
    assert written == set(documented["properties"]) and set(documented["required"]) <= written
