"""A payload's msgspec struct accepts exactly what its pydantic model accepts, with the same values.

`payload_struct` tries msgspec first and hands whatever it refuses to the model; for any
data, valid or not, it must end where `model.model_validate` ends: the same rejection, or
the same field values. msgspec's own verdict is checked on its own too: whatever it
accepts, the model accepts with the same values (else the model would never be asked).
"""
import json
import types
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Literal, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, ValidationError

from warden.contract.events import EVENT_MODELS, Payload, ReportReason, ReportSubmitted, model_for
from warden.contract.structs import Untranslatable, payload_from_json, payload_struct, struct_of

TRANSLATABLE = []
for _event_type, _model in EVENT_MODELS.items():
    try:
        struct_of(_model)
        TRANSLATABLE.append(_event_type)
    except Untranslatable:
        pass

json_scalars = st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63) | st.floats() | st.text(max_size=6)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
offsets = st.sampled_from(["Z", "z", "+00:00", "-00:00", "+02:00", "-05:30", "+14:00", "+24:00", "+0200", "+02", ""])
fractions = st.sampled_from(["", ".1", ".123", ".123456", ".1234567", ".123456789", ".", ",5"])


@st.composite
def times(draw):
    """Times as producers write them, and near misses: other separators, offsets, leap seconds, numbers."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    kind = draw(st.sampled_from(["warden", "warden", "rfc3339", "rfc3339", "isoformat", "number", "date"]))
    if kind == "warden":  # as envelope.rfc3339 writes it, in UTC or another zone
        zone = draw(st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=45))]))
        return moment.replace(tzinfo=zone).isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"])))
    if kind == "rfc3339":
        second = draw(st.sampled_from([f"{moment.second:02d}", "60"]))
        sep = draw(st.sampled_from(["T", "t", " ", "_"]))
        return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{sep}{moment.hour:02d}:{moment.minute:02d}"
                f":{second}{draw(fractions)}{draw(offsets)}")
    if kind == "isoformat":
        zone = draw(st.sampled_from([timezone.utc, timezone(timedelta(hours=-3, minutes=-30)), None]))
        return moment.replace(tzinfo=zone).isoformat()
    if kind == "number":
        return draw(st.integers(-10**11, 10**11) | st.floats(-1e11, 1e11))
    return moment.date().isoformat()


def strings(bounds: tuple[int, int]):
    low, high = bounds
    lengths = st.integers(low, min(high, low + 8)) | st.integers(low, min(high, low + 8)) | st.sampled_from(sorted({0, 1, max(low - 1, 0), low, high - 1,
                                                                             high, high + 1}))
    alphabet = st.sampled_from("aZ0 é€😀\x00\u200b")  # one, two, three and four UTF-8 bytes, controls
    return lengths.flatmap(lambda n: st.text(alphabet, min_size=n, max_size=n))


def values_for(annotation, metadata):
    """Values a field of this type might be sent: mostly of its type, near its bounds, sometimes anything."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        [inner] = [a for a in get_args(annotation) if a is not type(None)]
        return st.none() | values_for(inner, metadata)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if annotation is str:
        return strings((next((m.min_length for m in metadata if hasattr(m, "min_length")), 0),
                        next((m.max_length for m in metadata if hasattr(m, "max_length")), 8)))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-2**63, 2**63 - 1)
    if annotation is AwareDatetime:
        return times()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from([m.value for m in annotation])
    if isinstance(annotation, type) and issubclass(annotation, Payload):
        return data_for(annotation)
    raise AssertionError(f"no strategy for {annotation!r}")


near_misses = st.sampled_from([0, 1, 1.0, 1.5, True, "true", "7", "", "CHANNEL", 2**64, [], {}]) | json_values


def data_for(model):
    """A model's data: each field of its type 29 times in 30, else a near miss; now and then a field left out
    or a member the model does not know."""
    def field(info):
        return st.integers(0, 29).flatmap(lambda n: values_for(info.annotation, info.metadata) if n else near_misses)
    fields = {name: field(info) for name, info in model.model_fields.items()}
    left_out = st.integers(0, 9).flatmap(lambda n: st.just(set()) if n else st.sets(st.sampled_from(sorted(fields)),
                                                                                       min_size=1, max_size=1))
    return st.tuples(st.fixed_dictionaries(fields), left_out,
                     st.dictionaries(st.sampled_from(["extra", "_x"]), json_values, max_size=1)).map(
        lambda t: {**t[2], **{k: v for k, v in t[0].items() if k not in t[1]}})


def same_values(struct, model) -> bool:
    for name in type(model).model_fields:
        ours, theirs = getattr(struct, name), getattr(model, name)
        if isinstance(theirs, Payload):
            if not same_values(ours, theirs):
                return False
        elif isinstance(theirs, datetime):
            if type(ours) is not datetime or ours != theirs or ours.utcoffset() != theirs.utcoffset():
                return False
        elif type(ours) is not type(theirs) or ours != theirs:
            return False
    return True


def outcome_of_model(event_type, data):
    try:
        return model_for(event_type).model_validate(data)
    except ValidationError:
        return None


def assert_ends_as_the_model(event_type, value, model):
    """payload_struct ends where model_validate ended (`model`: its result, None if it refused)."""
    try:
        struct = payload_struct(event_type, value)
    except ValidationError:
        assert model is None
    else:
        assert model is not None and same_values(struct, model)


@pytest.mark.parametrize("event_type", TRANSLATABLE)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_struct_accepts_what_the_model_accepts_with_the_same_values(event_type, data):
    value = data.draw(data_for(model_for(event_type)))
    model = outcome_of_model(event_type, value)
    try:
        direct = msgspec.convert(value, struct_of(model_for(event_type)))
    except msgspec.ValidationError:
        direct = None
    if direct is not None:  # what msgspec accepts on its own, the model accepts alike
        assert model is not None and same_values(direct, model)
    from_json = payload_from_json(event_type, json.dumps(value).encode())
    if from_json is not None:  # and what it accepts from the JSON
        assert model is not None and same_values(from_json, model)
    assert_ends_as_the_model(event_type, value, model)


REPORT = "warden.moderation.report.submitted.v1"
A_REPORT = {"report_id": "r-1", "reporter_id": "a-1", "reported_at": "2026-12-03T10:00:00.5+01:00",
            "surface": "search", "reason": "drugs", "content": {"kind": "channel", "id": "c-1"}}


@example(reported_at=1764756000)  # a Unix time: pydantic reads it as UTC, msgspec refuses it
@example(reported_at="2026-12-03 10:00:00Z")  # a space for the T
@example(reported_at="2026-12-03T10:00:00.1234567+00:00")  # more than microseconds
@example(reported_at="٢٠٢٦-12-03T10:00:00Z")  # digits that are not ASCII
@example(reported_at="2026-12-03T10:00:00+05:99")  # an offset's minutes past 59
@given(reported_at=times())
def test_times_msgspec_refuses_are_judged_by_the_model(reported_at):
    value = {**A_REPORT, "reported_at": reported_at}
    assert_ends_as_the_model(REPORT, value, outcome_of_model(REPORT, value))


def test_a_report_becomes_its_struct_with_the_contract_types():
    report = payload_struct(REPORT, {**A_REPORT, "unknown": 1})
    assert type(report) is struct_of(ReportSubmitted)
    assert report.reason is ReportReason.drugs
    assert report.reported_at == datetime(2026, 12, 3, 9, 0, 0, 500000, tzinfo=timezone.utc)
    assert report.content.id == "c-1" and report.content.title is None and report.comment is None
    with pytest.raises(ValidationError, match="reporter_id"):
        payload_struct(REPORT, {**A_REPORT, "reporter_id": ""})
    with pytest.raises(ValidationError, match="content.kind"):
        payload_struct(REPORT, {**A_REPORT, "content": {"kind": "album", "id": "c-1"}})


def test_a_model_with_a_validator_or_a_pattern_is_not_translated():
    with pytest.raises(Untranslatable, match="validators"):
        struct_of(model_for("warden.legal.request.submitted.v1"))
    with pytest.raises(Untranslatable, match="pattern"):
        struct_of(model_for("warden.legal.authority.registered.v1"))
    assert REPORT in TRANSLATABLE


def test_a_model_whose_settings_change_what_it_accepts_is_not_translated():
    class Stripped(Payload):
        model_config = {**Payload.model_config, "str_strip_whitespace": True}
        name: str

    with pytest.raises(Untranslatable, match="str_strip_whitespace"):
        struct_of(Stripped)


def test_a_payload_from_json_is_read_to_the_last_byte_or_left_to_the_model():
    value = json.dumps(A_REPORT).encode()
    assert same_values(payload_from_json(REPORT, value), ReportSubmitted.model_validate(A_REPORT))
    assert payload_from_json(REPORT, value[:-1] + b', "extra": "\xff"}') is None  # a member the model does not know
    assert payload_from_json(REPORT, value[:-1] + b', "content": {"kind": "bot", "id": "c", "x": 1}}') is None
    assert payload_from_json(REPORT, value.replace(b'"r-1"', b'"r-\xff"')) is None  # not UTF-8
    assert payload_from_json("warden.no.such.event.v1", value) is None
