"""Hypothesis strategies for hostile Kafka records, each paired with the DLQ reasons it may earn.

A `Garbage` is a record (value + headers) and the reasons the consumer may give
when it dead-letters it. Every class the issue names is here: random bytes,
truncated and deeply nested JSON, wrong types, huge and non-UTF-8 strings, wrong
`specversion`, binary mode with `ce_` headers missing, events over 64 KiB.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import strategies as st

from warden.contract.envelope import MAX_EVENT_BYTES, new_event

ENVELOPE = {"invalid_envelope", "undecodable"}


@dataclass(frozen=True)
class Garbage:
    kind: str
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reasons: frozenset[str]


def structured(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


CT = (("content-type", b"application/cloudevents+json"),)


def garbage_for(event_type: str, good: Callable[[], dict[str, Any]], string_fields: list[str]):
    """Strategies of bad records for a topic whose good data is `good()`; `string_fields` are required strings."""

    def event(data: dict[str, Any], **attrs: Any) -> dict[str, Any]:
        value = new_event(event_type, "/fuzz", data)
        value.update(attrs)
        return value

    random_bytes = st.one_of(st.none(), st.binary(max_size=400)).map(
        lambda b: Garbage("random_bytes", b, CT, frozenset(ENVELOPE | {"invalid_data"})))

    truncated = st.integers(min_value=1, max_value=10_000).map(
        lambda n: (lambda whole: Garbage("truncated_json", whole[: max(1, min(n, len(whole) - 1))], CT,
                                         frozenset({"undecodable"})))(structured(event(good()))))

    def nested(depth: int, where: str) -> Garbage:
        blob = "[" * depth + "]" * depth
        if where == "value":
            raw = blob.encode()
        else:  # a field of data nested deep: valid JSON (if the parser copes), never a valid field
            data = good()
            raw = structured(event(data)).replace(
                json.dumps(data[string_fields[0]]).encode(), blob.encode(), 1)
        reasons = {"undecodable", "invalid_data", "oversized"}
        return Garbage("deeply_nested_json", raw, CT, frozenset(reasons))
    deep = st.builds(nested, st.integers(min_value=50, max_value=200_000), st.sampled_from(["value", "data"]))

    wrong_value = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                            st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                 max_size=3))

    def wrong_type(field: str, value: Any) -> Garbage:
        data = good()
        data[field] = value
        return Garbage("wrong_type", structured(event(data)), CT, frozenset({"invalid_data"}))
    wrong_types = st.builds(wrong_type, st.sampled_from(string_fields), wrong_value)
    whole_data_wrong = wrong_value.map(
        lambda v: Garbage("wrong_type", structured(event(v)), CT, frozenset({"invalid_data", "invalid_envelope"})))

    def huge(field: str, size: int, char: str) -> Garbage:
        data = good()
        data[field] = char * size
        raw = structured(event(data))
        return Garbage("huge_string", raw, CT, frozenset({"invalid_data", "oversized"}))
    huge_strings = st.builds(huge, st.sampled_from(string_fields), st.integers(min_value=300, max_value=60_000),
                             st.sampled_from(["x", "é", "\u202e", "\x00", "🙂"]))

    def non_utf8(field: str, junk: bytes) -> Garbage:
        data = good()
        data[field] = "MARKER"
        raw = structured(event(data)).replace(b"MARKER", b"\xff" + junk + b"\xc3\x28", 1)
        return Garbage("non_utf8_string", raw, CT, frozenset({"undecodable"}))
    non_utf8s = st.builds(non_utf8, st.sampled_from(string_fields), st.binary(max_size=20))

    specversions = st.sampled_from(["0.3", "2.0", "1", "1.0.0", " 1.0", 1.0, 1, True, ["1.0"], {"v": "1.0"}])
    wrong_spec = specversions.map(lambda v: Garbage(
        "wrong_specversion", structured(event(good(), specversion=v)), CT, frozenset({"invalid_envelope"})))

    def binary_missing(missing: list[str]) -> Garbage:
        attrs = {"specversion": "1.0", "id": "fuzz-1", "source": "/fuzz", "type": event_type,
                 "time": "2026-01-01T00:00:00Z"}
        headers = [(f"ce_{k}", str(v).encode()) for k, v in attrs.items() if k not in missing]
        headers.append(("content-type", b"application/json"))
        return Garbage("missing_ce_headers", json.dumps(good()).encode(), tuple(headers),
                       frozenset({"invalid_envelope"}))
    missing_ce = st.lists(st.sampled_from(["specversion", "id", "source", "type", "time"]), min_size=1,
                          max_size=5, unique=True).map(binary_missing)

    def oversized(extra: int) -> Garbage:
        value = event(good())
        value["padding"] = "p" * (MAX_EVENT_BYTES + extra)
        return Garbage("over_64_kib", structured(value), CT, frozenset({"oversized"}))
    over = st.integers(min_value=1, max_value=200_000).map(oversized)

    return {
        "random_bytes": random_bytes, "truncated_json": truncated, "deeply_nested_json": deep,
        "wrong_type": st.one_of(wrong_types, whole_data_wrong), "huge_string": huge_strings,
        "non_utf8_string": non_utf8s, "wrong_specversion": wrong_spec, "missing_ce_headers": missing_ce,
        "over_64_kib": over,
    }


def draw_batch(data, strategies: dict, per_kind: int) -> list[Garbage]:
    """`per_kind` values of every kind, drawn in one Hypothesis example (so every class is always tried)."""
    batch: list[Garbage] = []
    for kind, strategy in strategies.items():
        batch += data.draw(st.lists(strategy, min_size=per_kind, max_size=per_kind), label=kind)
    return batch
