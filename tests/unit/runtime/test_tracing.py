"""Trace context: read from events and HTTP headers, carried onto emitted events and logs; spans when on."""
from __future__ import annotations

import json
import logging

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from warden.contract.envelope import decode, encode_structured, new_event
from warden.contract.events import RequestStatus
from warden.contract.trace_context import TraceContext
from warden.runtime import tracing
from warden.runtime.http import build_app
from warden.runtime.logs import configure_logging
from warden.runtime.outbox import event_row
from warden.runtime.settings import ConfigurationError

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"
BINARY = [("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"/gw"), ("ce_type", b"t.v1"),
          ("ce_time", b"2026-01-01T00:00:00Z"), ("content-type", b"application/json")]


@pytest.mark.parametrize("traceparent, tracestate, expected", [
    (TRACEPARENT, "congo=t61rcWkgMzE", (TRACEPARENT, "congo=t61rcWkgMzE")),
    (TRACEPARENT.encode(), None, (TRACEPARENT, None)),                        # a binary-mode header
    (f"01-{TRACE_ID}-{SPAN_ID}-01-later-field", None, (TRACEPARENT, None)),  # a later version: its known part
    (TRACEPARENT, "x=" + "a" * 600, (TRACEPARENT, None)),                     # tracestate too long: dropped alone
    (TRACEPARENT, "x=\u00e9", (TRACEPARENT, None)),
    (TRACEPARENT.upper(), None, None),
    (f"00-{'0' * 32}-{SPAN_ID}-01", None, None),
    (f"00-{TRACE_ID}-{'0' * 16}-01", None, None),
    (f"ff-{TRACE_ID}-{SPAN_ID}-01", None, None),
    (TRACEPARENT + "-extra", None, None),  # version 00 has exactly four fields
    ("not a traceparent", None, None),
    (b"\xff\xfe", None, None),
    (42, None, None),
    (None, None, None),
])
def test_traceparent_is_taken_only_well_formed(traceparent, tracestate, expected):
    parsed = TraceContext.parse(traceparent, tracestate)
    assert (parsed and (parsed.traceparent, parsed.tracestate)) == expected


def test_the_extension_is_read_in_structured_and_binary_mode_and_a_bad_one_refuses_nothing():
    trace = TraceContext(TRACEPARENT, "a=1")
    value, headers = encode_structured(new_event("t.v1", "/src", {"a": 1}, trace=trace))
    assert json.loads(value)["traceparent"] == TRACEPARENT
    assert decode(value, headers, allow_binary=False).trace == trace
    binary = BINARY + [("ce_traceparent", TRACEPARENT.encode()), ("ce_tracestate", b"a=1")]
    assert decode(b'{"a": 2}', binary, allow_binary=True).trace == trace
    malformed = decode(b'{"a": 2}', BINARY + [("ce_traceparent", b"00-garbage")], allow_binary=True)
    assert malformed.trace is None and malformed.data == {"a": 2}
    untraced, _ = encode_structured(new_event("t.v1", "/src", {"a": 1}))
    assert "traceparent" not in json.loads(untraced)


def status() -> RequestStatus:
    return RequestStatus.model_validate({"request_id": "REQ-1", "authority_id": "auth-1", "case_id": None,
                                         "status": "received", "reasons": [], "at": "2026-01-01T00:00:00Z"})


def test_events_emitted_while_handling_carry_the_trace_context_and_the_outbox_row_keeps_it():
    trace = TraceContext(TRACEPARENT, "a=1")
    with tracing.within(trace, event_id="e-1"):
        row = event_row("intake", status())
    assert json.loads(row.value)["traceparent"] == TRACEPARENT and json.loads(row.value)["tracestate"] == "a=1"
    assert row.trace == trace
    outside = event_row("intake", status())
    assert outside.trace is None and "traceparent" not in json.loads(outside.value)


def test_log_records_name_the_trace_and_the_event(capsys):
    configure_logging("intake")
    try:
        with tracing.within(TraceContext(TRACEPARENT), event_id="e-42"):
            logging.getLogger("intake.handlers").info("request verified", extra={"case_id": "c-1"})
        logging.getLogger("intake.handlers").info("between events")
    finally:
        logging.getLogger().handlers[:] = []
    inside, outside = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()[-2:]]
    assert (inside["trace_id"], inside["event_id"], inside["case_id"]) == (TRACE_ID, "e-42", "c-1")
    assert "trace_id" not in outside and "event_id" not in outside


@pytest.mark.parametrize("environ, on", [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "intake"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_tracing_is_off_unless_the_otel_variables_ask_for_an_exporter(environ, on):
    assert tracing.tracing_requested(environ) is on


@pytest.mark.parametrize("environ, named", [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL"),
])
def test_an_exporter_that_cannot_be_had_is_refused_by_name(environ, named, monkeypatch):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=named):
        tracing.configure_tracing("intake")
    assert not tracing.enabled()


def test_configured_from_the_environment_it_exports_with_the_service_name(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    try:
        assert tracing.configure_tracing("legal-review")
        assert tracing.enabled()
        with tracing.within(None, span="probe") as scope:
            assert scope.span.resource.attributes["service.name"] == "legal-review"
    finally:
        tracing.stop_tracing()


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.stop_tracing()


async def test_each_http_request_is_a_server_span_named_by_its_route_template_in_the_callers_trace(spans):
    app = build_app("intake", lambda: {})
    emitted = []

    @app.get("/requests/{request_id}")
    async def a_request(request_id: str):
        emitted.append(event_row("intake", status()))
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/requests/REQ-secret-ref", headers={"traceparent": TRACEPARENT})).status_code == 200
        assert (await client.get("/requests/REQ-2")).status_code == 200
        for probe in ("/healthz", "/readyz", "/metrics"):  # scrapes and probes make no span
            await client.get(probe, headers={"traceparent": TRACEPARENT})
        assert (await client.get("/nowhere")).status_code == 404
    called, untraced, unrouted = spans.get_finished_spans()
    assert called.name == "GET /requests/{request_id}" and "REQ-secret-ref" not in str(called.attributes)
    assert f"{called.context.trace_id:032x}" == TRACE_ID and f"{called.parent.span_id:016x}" == SPAN_ID
    assert called.attributes["http.response.status_code"] == 200
    # What the request emitted is the span's child, in the caller's trace.
    assert emitted[0].trace.traceparent == f"00-{TRACE_ID}-{called.context.span_id:016x}-01"
    # Without a traceparent, a trace of its own; a path no route takes is named by the method alone.
    assert untraced.name == "GET /requests/{request_id}" and f"{untraced.context.trace_id:032x}" != TRACE_ID
    assert unrouted.name == "GET" and unrouted.attributes["http.response.status_code"] == 404


async def test_without_tracing_a_request_carries_its_header_onto_what_it_emits_and_makes_no_span():
    assert not tracing.enabled()
    app = build_app("intake", lambda: {})
    emitted = []

    @app.post("/submit")
    async def submit():
        emitted.append(event_row("intake", status()))
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        await client.post("/submit", headers={"traceparent": TRACEPARENT, "tracestate": "a=1"})
    assert emitted[0].trace == TraceContext(TRACEPARENT, "a=1")


def test_with_an_otlp_endpoint_spans_are_exported_over_http_protobuf_to_it(monkeypatch):
    """A stand-in collector on loopback receives what the OTLP exporter sends (OTEL_* variables only)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        assert tracing.configure_tracing("disclosure")
        with tracing.within(TraceContext(TRACEPARENT), span="process legal.requests.decided", kind="CONSUMER"):
            pass
        tracing.stop_tracing()  # flushes the batch processor
    finally:
        server.shutdown()
    [(path, body)] = received
    export = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = export.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    [span] = resource_spans.scope_spans[0].spans
    assert path == "/v1/traces"
    assert resource["service.name"] == "disclosure" and resource["deployment.environment"] == "test"
    assert span.name == "process legal.requests.decided" and span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == SPAN_ID


def test_a_failed_span_names_the_exception_type_never_its_message(spans):
    with pytest.raises(KeyError):
        with tracing.within(None, span="process legal.requests.received"):
            raise KeyError("+33612345678")
    [span] = spans.get_finished_spans()
    assert not span.status.is_ok and span.attributes["error.type"] == "KeyError"
    assert "+33612345678" not in str(span.to_json())
