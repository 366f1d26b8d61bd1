"""The CloudEvents distributed-tracing extension: a W3C Trace Context (`traceparent`, `tracestate`).

Carried from an event to the events derived from it (warden/runtime/tracing.py). It is
optional and never a reason to refuse an event: a malformed one is dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# W3C Trace Context: version-traceid-parentid-flags, lowercase hex; a later version may append fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
MAX_TRACESTATE = 512  # the W3C recommendation's limit; longer ones are dropped, not cut


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A validated `traceparent` (its 55-character version-00 form) and `tracestate`, if any."""

    traceparent: str
    tracestate: str | None = None

    @property
    def trace_id(self) -> str:
        return self.traceparent[3:35]

    @classmethod
    def parse(cls, traceparent: Any, tracestate: Any = None) -> TraceContext | None:
        """The context, or None for a missing or malformed `traceparent` (an event is never refused for
        it: its trace just starts here). A malformed `tracestate` is dropped on its own."""
        traceparent, tracestate = _text(traceparent), _text(tracestate)
        if traceparent is None or len(traceparent) > 256:
            return None
        match = _TRACEPARENT.fullmatch(traceparent)
        if match is None:
            return None
        version, trace_id, span_id, flags, rest = match.groups()
        if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        if tracestate is not None and (len(tracestate) > MAX_TRACESTATE or not tracestate.isascii()
                                       or not tracestate.isprintable()):
            tracestate = None
        return cls(f"00-{trace_id}-{span_id}-{flags}", tracestate or None)

    def attributes(self) -> dict[str, str]:
        """As CloudEvents extension attributes (and HTTP headers)."""
        if self.tracestate is None:
            return {"traceparent": self.traceparent}
        return {"traceparent": self.traceparent, "tracestate": self.tracestate}


def _text(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) and value else None
