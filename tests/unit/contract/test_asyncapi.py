"""docs/asyncapi.yaml is the contract published to integrators: it must match the models."""
import json
from pathlib import Path

import jsonschema
import yaml

from warden.contract.asyncapi import build_document, render
from warden.contract.events import EVENT_MODELS
from warden.contract.topics import TOPICS

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
    assert set(addresses) == set(TOPICS)
    documented_types = {m["name"] for m in doc["components"]["messages"].values()}
    assert documented_types == set(EVENT_MODELS)
    for topic in TOPICS.values():
        names = {doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
                 for ref in addresses[topic.name]["messages"].values()}
        assert names == set(topic.event_types)


def test_payload_schemas_list_every_model_field():
    schemas = build_document()["components"]["schemas"]
    for model in EVENT_MODELS.values():
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
