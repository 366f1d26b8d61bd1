"""The trace context of an outbox row is kept in the table: a scan after a restart (nothing handed over)
still publishes the row in its event's trace, and a row set aside keeps it."""
from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from warden.contract.trace_context import TraceContext
from warden.runtime import tracing
from warden.runtime.outbox import OutboxRow, write_rows

from tests.integration.runtime.test_outbox_handover import TOPIC, Setup

TRACE = TraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "rojo=00f067aa0ba902b7")
TOO_LARGE = b"x" * (3 * 1024 * 1024)


async def test_a_scanned_row_is_published_in_its_trace_and_a_refused_one_keeps_it(bootstrap, database_url):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Setup(database_url, bootstrap) as s:
        async with s.pool.acquire() as conn, conn.transaction():
            await write_rows(conn, [OutboxRow(TOPIC, s.key, b"traced", trace=TRACE),
                                    OutboxRow(TOPIC, s.key, TOO_LARGE, trace=TRACE),
                                    OutboxRow(TOPIC, s.key, b"untraced")])
        tracing.use_provider(provider)
        try:
            assert await s.relay.publish_batch() == 3  # a scan: the rows come from the table alone
        finally:
            tracing.stop_tracing()
        async with s.pool.acquire() as conn:
            aside = await conn.fetchrow("SELECT traceparent, tracestate FROM outbox_refused")
        assert await s.published() == [b"traced", b"untraced"]

    published, refused = sorted(exporter.get_finished_spans(), key=lambda span: not span.status.is_ok)
    assert published.name == f"publish {TOPIC}" and published.status.is_ok
    assert f"{published.context.trace_id:032x}" == TRACE.trace_id
    assert f"{published.parent.span_id:016x}" == "b7ad6b7169203331"
    assert published.context.trace_state.to_header() == TRACE.tracestate
    assert refused.context.trace_id == published.context.trace_id and not refused.status.is_ok
    assert (aside["traceparent"], aside["tracestate"]) == (TRACE.traceparent, TRACE.tracestate)
