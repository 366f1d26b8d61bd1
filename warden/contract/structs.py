"""The contract's payload models as msgspec structs, for topics whose handlers take many events a second.

A pydantic model is the contract (events.py). `struct_of(model)` derives from it a msgspec
struct with the same fields, the same constraints and the same defaults, which msgspec
builds from an event's `data` in C: a report in ~1 µs against ~6.5 µs for the model (most
of that is building two model instances). A subscription that declares `structs`
(warden/runtime/service.py) hands its handlers these structs.

`payload_struct` only ever accepts what the model accepts, with the same values: msgspec's
rules are stricter than pydantic's lax mode (no strings for numbers, RFC 3339 only for
times), and whatever it refuses goes to the model, which accepts it or says why not. A
property test holds the two to the same result (tests/unit/contract/test_structs.py).

Only what translates exactly is derived: strings with length bounds, booleans, integers,
string literals, enums, aware datetimes, nested payload models and optional fields. Any
other field type or constraint, a validator, an alias, raises `Untranslatable`. An aware
datetime is taken only in the RFC 3339 form Warden writes, with at most microseconds, and
read by `datetime.fromisoformat`: msgspec's own parser rounds further digits where pydantic
truncates them.
"""
from __future__ import annotations

import types
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from annotated_types import MaxLen, MinLen
from msgspec.structs import force_setattr
from pydantic import AwareDatetime
from pydantic_core import PydanticUndefined

from warden.contract.envelope import RFC3339
from warden.contract.events import EVENT_MODELS, Payload, model_for


# msgspec searches a pattern: anchored here, with the envelope's flags (ASCII digits only).
_TIME = msgspec.Meta(pattern=rf"(?a)\A(?:{RFC3339.pattern})\Z")
_fromisoformat = datetime.fromisoformat
# Model settings a struct reproduces; any other (strict mode, string stripping, ...) changes what pydantic accepts.
_SETTINGS = {"extra", "frozen"}


class Untranslatable(TypeError):
    """A model with a field, constraint or validator that a msgspec struct would not check the same way."""


@cache
def struct_of(model: type[Payload], closed: bool = False) -> type[msgspec.Struct]:
    """The msgspec struct of a contract model (cached: one class per model). `closed`: it also refuses members the
    model does not know, and its nested structs do, so that decoding it from JSON checks every byte of the data
    (msgspec skips an unknown member without reading its strings or numbers)."""
    decorators = model.__pydantic_decorators__
    if (decorators.validators or decorators.field_validators or decorators.root_validators
            or decorators.model_validators):
        raise Untranslatable(f"{model.__name__} has validators")
    if set(model.model_config) - _SETTINGS:
        raise Untranslatable(f"{model.__name__} has settings {sorted(set(model.model_config) - _SETTINGS)}")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    times: list[str] = []  # fields read as RFC 3339 text, turned into datetimes once the struct is built
    for name, info in model.model_fields.items():
        if info.alias not in (None, name) or info.validation_alias not in (None, name):
            raise Untranslatable(f"{model.__name__}.{name} has an alias")
        annotation = _translate(info.annotation, info.metadata, f"{model.__name__}.{name}", closed)
        if _is_time(annotation):
            times.append(name)
        if info.is_required():
            fields.append((name, annotation))
        elif info.default is PydanticUndefined or isinstance(info.default, (list, dict, set)):
            raise Untranslatable(f"{model.__name__}.{name} has a default factory or a mutable default")
        else:
            fields.append((name, annotation, info.default))
    # Required fields first, as a struct's constructor needs; decoding goes by name, so the order is not seen.
    fields.sort(key=lambda field: len(field) == 3)
    return msgspec.defstruct(
        model.__name__, fields, module=__name__, namespace={"__post_init__": _times_read(times)} if times else None,
        frozen=bool(model.model_config.get("frozen")),
        forbid_unknown_fields=closed or model.model_config.get("extra") == "forbid",
        gc=False)  # built from JSON values: never part of a reference cycle, so never tracked by the collector


def _translate(annotation: Any, metadata: list[Any], where: str, closed: bool) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        if len(members) != 2 or type(None) not in members:
            raise Untranslatable(f"{where}: only X | None translates")
        [inner] = [m for m in members if m is not type(None)]
        return _translate(inner, metadata, where, closed) | None
    if origin is Literal:
        if not all(type(v) is str for v in get_args(annotation)) or metadata:
            raise Untranslatable(f"{where}: only literals of strings translate")
        return annotation
    if annotation is str:
        return Annotated[str, _string_bounds(metadata, where)] if metadata else str
    if metadata:
        raise Untranslatable(f"{where}: constraints {metadata} do not translate")
    if annotation in (bool, int):
        return annotation
    if annotation is AwareDatetime:
        return Annotated[str, _TIME]
    if isinstance(annotation, type) and issubclass(annotation, Enum) and issubclass(annotation, str):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, Payload):
        return struct_of(annotation, closed)
    raise Untranslatable(f"{where}: {annotation!r} does not translate")


def _is_time(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_time(member) for member in get_args(annotation))
    return get_origin(annotation) is Annotated and get_args(annotation)[1] is _TIME


def _times_read(names: list[str]) -> Any:
    """A struct's __post_init__ that reads its time fields' text (msgspec turns a ValueError into its
    ValidationError: a day or an offset out of range goes to the model). A struct built from a validated
    model has its datetimes already."""
    def __post_init__(self: msgspec.Struct) -> None:
        for name in names:
            text = getattr(self, name)
            if type(text) is str:
                force_setattr(self, name, _fromisoformat(text))
    return __post_init__


def _string_bounds(metadata: list[Any], where: str) -> msgspec.Meta:
    bounds: dict[str, int] = {}
    for constraint in metadata:
        if isinstance(constraint, MinLen):
            bounds["min_length"] = constraint.min_length
        elif isinstance(constraint, MaxLen):
            bounds["max_length"] = constraint.max_length
        else:
            raise Untranslatable(f"{where}: {constraint!r} does not translate")
    return msgspec.Meta(**bounds)


def payload_struct(event_type: str, data: dict[str, Any]) -> msgspec.Struct:
    """An event's data as its model's struct, or pydantic's ValidationError as `model.model_validate` raises it."""
    model = model_for(event_type)
    try:
        return msgspec.convert(data, struct_of(model))
    except msgspec.ValidationError:  # the model judges what msgspec's stricter rules refuse
        return _struct_from(model.model_validate(data))


def payload_from_json(event_type: str, data: msgspec.Raw | bytes) -> msgspec.Struct | None:
    """An event's data decoded straight from its JSON object into its model's closed struct, every byte of it
    checked; None where msgspec refuses it, a member the model does not know included (`payload_struct` then
    decides, from the decoded data)."""
    model = EVENT_MODELS.get(event_type)
    try:
        return None if model is None else _json_decoder(model).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, Untranslatable):  # ValidationError: a DecodeError
        return None


@cache
def _json_decoder(model: type[Payload]) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(struct_of(model, closed=True))


def _struct_from(payload: Payload) -> msgspec.Struct:
    """The struct of a validated model, its values as they are (a struct's constructor checks no types)."""
    return struct_of(type(payload))(**{
        name: _struct_from(value) if isinstance(value, Payload) else value
        for name, value in ((name, getattr(payload, name)) for name in type(payload).model_fields)})
