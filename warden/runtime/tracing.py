"""Distributed tracing: the W3C trace context of each event carried to the events derived from it,
and OpenTelemetry spans per handler and per HTTP request when an exporter is configured.

An incoming event's CloudEvents distributed-tracing extension (`traceparent`, `tracestate`, in the
JSON in structured mode, `ce_traceparent`/`ce_tracestate` headers in binary mode) or an HTTP
request's `traceparent`/`tracestate` headers become the *current* trace context while its handler
runs (a context variable); every event emitted meanwhile (`outbox.event_row`) carries it, through
the outbox (its `traceparent`/`tracestate` columns), to the next service. Logs name its trace id.

Tracing is off unless the standard `OTEL_*` variables ask for an exporter (`tracing_requested`):
then nothing but that context variable is touched per event, and the OpenTelemetry SDK is not
loaded. When on, each handler call and HTTP request is a span whose parent is the carried context,
and the context carried onwards is the span's own, so the spans of all services form one trace.
A failed span records the exception's type, never its message (it may quote an event's data).
"""
from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warden.contract.trace_context import TraceContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Current:
    """What the running handler or request works for: its trace context and CloudEvent id, if any."""

    trace: TraceContext | None
    event_id: str | None = None


_current: contextvars.ContextVar[Current | None] = contextvars.ContextVar("warden_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context events emitted now must carry."""
    current = _current.get()
    return current.trace if current is not None else None


def current() -> Current | None:
    return _current.get()


# --- OpenTelemetry, only when configured ---------------------------------------------------------

_tracer = None  # an opentelemetry Tracer while tracing is on
_provider = None  # its TracerProvider


def enabled() -> bool:
    return _tracer is not None


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces: `OTEL_TRACES_EXPORTER` set to anything but `none`,
    or an OTLP endpoint given (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
    `OTEL_SDK_DISABLED=true` turns it all off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service: str) -> bool:
    """Turn tracing on for this process if the environment asks for it (see `tracing_requested`).
    The exporters: `otlp` (OTLP over HTTP/protobuf, configured by `OTEL_EXPORTER_OTLP_*`) and
    `console`; the sampler by `OTEL_TRACES_SAMPLER` (default: parent-based, always on); the
    resource by `OTEL_SERVICE_NAME` (default: the service's name) and `OTEL_RESOURCE_ATTRIBUTES`.
    ConfigurationError names a variable that cannot be honoured. (The SDK reads the variables from
    the process environment itself.)"""
    environ = os.environ
    if not tracing_requested(environ):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from warden.runtime.settings import ConfigurationError

    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    unknown = [n for n in names if n not in ("otlp", "console", "none")]
    if unknown:
        raise ConfigurationError(f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not available "
                                 "(use otlp, console or none)")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol not in (None, "", "http/protobuf"):
        raise ConfigurationError("OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is available "
                                 "(point the endpoint at the collector's HTTP port, 4318)")
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    use_provider(provider)
    log.info("tracing on", extra={"exporters": names})
    return True


def use_provider(provider) -> None:
    """Trace with this `TracerProvider` (configure_tracing's, or a test's with an in-memory exporter)."""
    global _tracer, _provider
    _provider, _tracer = provider, provider.get_tracer("warden")


def stop_tracing() -> None:
    """Tracing off; the spans still buffered are exported first."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def _parent(trace: TraceContext | None):
    """An OpenTelemetry context whose parent is `trace` (None: a new trace)."""
    if trace is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    return TraceContextTextMapPropagator().extract(trace.attributes())


def _carried(span, incoming: TraceContext | None) -> TraceContext:
    """The trace context of `span`, to carry onwards (its tracestate, else the incoming one)."""
    context = span.get_span_context()
    tracestate = context.trace_state.to_header() if context.trace_state else None
    return TraceContext(f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}",
                        tracestate or (incoming.tracestate if incoming else None))


class within:
    """`with within(trace, event_id=..., span=..., kind=..., attributes=..., links=...) as scope:` makes
    `trace` current, or, when tracing is on and `span` names one, a span whose parent it is (and the
    span's context current). `scope.span` is that span or None. An exception marks the span failed
    (by type) and propagates, except one of `retried`: the work is done again (the batch kernel's
    replay), and the span says so (`warden.retried`) without failing."""

    __slots__ = ("trace", "event_id", "name", "kind", "attributes", "links", "retried", "span", "_token",
                 "_span_cm")

    def __init__(self, trace: TraceContext | None, *, event_id: str | None = None, span: str | None = None,
                 kind: str = "INTERNAL", attributes: dict[str, Any] | None = None,
                 links: Iterable[TraceContext] = (), retried: tuple[type[BaseException], ...] = ()):
        self.trace, self.event_id, self.name = trace, event_id, span
        self.kind, self.attributes, self.links, self.retried = kind, attributes, links, retried
        self.span = None
        self._span_cm = None

    def __enter__(self) -> within:
        trace = self.trace
        if _tracer is not None and self.name is not None:
            from opentelemetry.trace import Link, SpanKind, get_current_span
            links = [Link(get_current_span(_parent(t)).get_span_context()) for t in self.links]
            self._span_cm = _tracer.start_as_current_span(
                self.name, context=_parent(trace), kind=getattr(SpanKind, self.kind), attributes=self.attributes,
                links=links, record_exception=False, set_status_on_exception=False)
            self.span = self._span_cm.__enter__()
            trace = _carried(self.span, trace)
        self._token = _current.set(Current(trace, self.event_id))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        _current.reset(self._token)
        if self._span_cm is not None:
            if isinstance(exc, self.retried):
                self.span.set_attribute("warden.retried", True)
            elif exc is not None:
                _failed(self.span, exc)
            self._span_cm.__exit__(exc_type, exc, tb)


def start_span(name: str, parent: TraceContext | None, *, kind: str = "INTERNAL",
               attributes: dict[str, Any] | None = None):
    """A span that is not made current (the relay's publish of one row, ended with `end_span`);
    None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind
    return _tracer.start_span(name, context=_parent(parent), kind=getattr(SpanKind, kind), attributes=attributes)


def end_span(span, error: BaseException | None = None) -> None:
    if span is None:
        return
    if error is not None:
        _failed(span, error)
    span.end()


def _failed(span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def mark_dead_lettered(reason: str) -> None:
    """The current span's event was dead-lettered: say why on the span (tracing on only)."""
    if _tracer is None:
        return
    from opentelemetry.trace import Status, StatusCode, get_current_span
    span = get_current_span()
    span.set_attribute("warden.dlq.reason", reason)
    span.set_status(Status(StatusCode.ERROR, reason))


def mark_failed(scope: within, description: str) -> None:
    """`scope`'s span failed without an exception (an HTTP 5xx answer)."""
    if scope.span is not None:
        from opentelemetry.trace import Status, StatusCode
        scope.span.set_status(Status(StatusCode.ERROR, description))
