"""decode's plain structured-mode path says exactly what the CloudEvents SDK's reading says, for any record."""
from __future__ import annotations

import json
from unittest import mock

from hypothesis import example, given, settings, strategies as st

from warden.contract import envelope
from warden.contract.envelope import EventRejected, decode

VALID_TIME = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
TIMES = st.one_of(
    VALID_TIME, VALID_TIME, VALID_TIME,
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:\d{2}|[+-]\d{4})?\Z"),
    st.sampled_from(["2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01 10:00:00Z", "2026-01-01",
                     "2026-01-01T10:00Z", "", "yesterday"]),
    st.integers(), st.none())
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=6)
ATTRIBUTES = st.fixed_dictionaries(
    {"specversion": st.sampled_from(["1.0"] * 5 + ["0.3", 1.0, ""]),
     "id": st.one_of(st.text(min_size=1, max_size=4), st.text(min_size=1, max_size=4), st.text(max_size=1),
                     st.integers()),
     "source": st.sampled_from(["/src"] * 5 + ["", 3]), "type": st.sampled_from(["t.v1"] * 5 + ["", None]),
     "time": TIMES},
    optional={"data": JSONISH, "data_base64": st.sampled_from(["eyJhIjogMX0=", "!!", None]),
              "datacontenttype": st.sampled_from(["application/json", "text/plain", 5]),
              "subject": st.sampled_from(["s", "", 3]), "dataschema": st.sampled_from(["https://x/y", "", "::"]),
              "Bad-Name": st.text(max_size=3), "ext": st.one_of(st.integers(), st.text(max_size=3), st.none())})
ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32"])


def outcome(value: bytes) -> tuple:
    try:
        e = decode(value, [], allow_binary=False)
    except EventRejected as rejected:
        return ("rejected", rejected.reason, rejected.error)
    return ("decoded", e.id, e.source, e.type, e.time, e.time.utcoffset(), e.data, e.binary_mode)


@settings(max_examples=2000, deadline=None)
@given(attributes=ATTRIBUTES, encoding=ENCODINGS, drop=st.sampled_from(["", "", "", "id", "time", "data"]))
@example(attributes={"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "time": "2026-01-01T00:00:00Z",
                     "data": {}}, encoding="utf-8-sig", drop="")
@example(attributes={"specversion": "1.0", "id": "e", "source": "/s", "type": "t",
                     "time": "2026-01-01T00:00:00+00:00", "data": {"a": "\ud800"}}, encoding="utf-8", drop="")
def test_the_plain_path_and_the_sdk_agree(attributes, encoding, drop):
    attributes.pop(drop, None)
    value = json.dumps(attributes, ensure_ascii=False).encode(encoding, "surrogatepass")
    fast = outcome(value)
    with mock.patch.object(envelope, "_read_plain_structured", return_value=None):
        assert outcome(value) == fast


def test_the_plain_path_is_taken_for_what_warden_writes():
    value, _ = envelope.encode_structured(envelope.new_event("t.v1", "/src", {"a": 1}))
    assert envelope._read_plain_structured(value, json.loads(value)) is not None
