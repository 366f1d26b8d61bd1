"""Issue 22: a request's trace context followed across intake -> legal review -> disclosure.

On the real broker and Postgres: a `traceparent` sent with a request (structured mode, binary
mode, or the authority API's HTTP header) is on its disclosure event; with tracing on
(an in-memory exporter), the handler spans of the three services form one trace.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from warden.cli.authority_client import AuthorityClient
from warden.contract.envelope import encode_structured, new_event
from warden.contract.trace_context import TraceContext
from warden.runtime import tracing
from warden.signing import generate_keypair

from tests.support.kafka import produce_event, produce_raw, wait_for_events
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority

SUBMITTED_TOPIC = "legal.requests.submitted"
SUBMITTED = "warden.legal.request.submitted.v1"
NOW = datetime.now(timezone.utc)


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def suspect_on_file(bootstrap: str, database_url: str) -> str:
    """A subscriber with a phone number and a session, stored by disclosure: a request for it is disclosed."""
    account_id, username = f"acct-{uuid.uuid4().hex[:10]}", f"dealer_{uuid.uuid4().hex[:8]}"
    phone = "+3361" + "".join(random.choice("0123456789") for _ in range(7))
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
        "updated_at": (NOW - timedelta(days=100)).isoformat()})
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.9", "observed_at": (NOW - timedelta(days=5)).isoformat()})
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 30
        while not await conn.fetchval("SELECT count(*) FROM disclosure.sessions WHERE account_id = $1", account_id):
            assert time.monotonic() < deadline, "disclosure never stored the subscriber"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return username


async def submit_structured(bootstrap: str, data: dict, traceparent: str, tracestate: str) -> None:
    event = new_event(SUBMITTED, "/gateway", data, trace=TraceContext.parse(traceparent, tracestate))
    value, headers = encode_structured(event)
    await produce_raw(bootstrap, SUBMITTED_TOPIC, value, key=data["authority_id"].encode(), headers=headers)


async def submit_binary(bootstrap: str, data: dict, traceparent: str) -> None:
    headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()), ("ce_source", b"/gateway"),
               ("ce_type", SUBMITTED.encode()), ("ce_time", datetime.now(timezone.utc).isoformat().encode()),
               ("ce_traceparent", traceparent.encode()), ("content-type", b"application/json")]
    await produce_raw(bootstrap, SUBMITTED_TOPIC, json.dumps(data).encode(), key=data["authority_id"].encode(),
                      headers=headers)


async def submit_over_http(intake, authority: dict, data: dict, traceparent: str) -> None:
    client = AuthorityClient(f"http://127.0.0.1:{intake.settings.http_port}", authority["authority_id"],
                             authority["private_key"])
    call = client.build("POST", "/authority/v1/requests", json.dumps(data).encode())
    call.headers["traceparent"] = traceparent
    response = await client.send(call)
    assert response.status_code == 202, response.text


async def disclosure_of(bootstrap: str, request_id: str) -> dict:
    [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued",
                                     lambda e: e["data"]["request_id"] == request_id, timeout=60)
    return issued


@contextlib.asynccontextmanager
async def pipeline(bootstrap: str, database_url: str):
    """Intake, legal review and disclosure, each in its own consumer groups, on this test's database."""
    async with running("intake", service_settings(bootstrap, database_url)) as intake, \
            running("legal-review", service_settings(bootstrap, database_url)), \
            running("disclosure", service_settings(bootstrap, database_url)):
        yield intake


async def test_a_traceparent_sent_with_a_request_is_on_its_disclosure_event(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", generate_keypair()["private_key"])
    assert not tracing.enabled()  # the default: the context is carried as it came, no span anywhere
    court = new_authority()
    await register_authority(bootstrap, court)
    async with pipeline(bootstrap, database_url) as intake:
        for schema in ("intake", "legal_review", "disclosure"):
            await wait_for_authority(database_url, schema, court["authority_id"])
        username = await suspect_on_file(bootstrap, database_url)
        requests = [signed(request_data(court, suspect={"username": "@" + username}), court["private_key"])
                    for _ in range(3)]
        structured, binary, http = new_traceparent(), new_traceparent(), new_traceparent()
        await submit_structured(bootstrap, requests[0], structured, "vendor=opaque")
        await submit_binary(bootstrap, requests[1], binary)
        await submit_over_http(intake, court, requests[2], http)
        issued = [await disclosure_of(bootstrap, r["request_id"]) for r in requests]
        decided = await wait_for_events(bootstrap, "legal.requests.decided",
                                        lambda e: e["data"]["request_id"] == requests[0]["request_id"])

    assert [(e["traceparent"], e.get("tracestate")) for e in issued] == [
        (structured, "vendor=opaque"), (binary, None), (http, None)]
    assert [(e["traceparent"], e["tracestate"]) for e in decided] == [(structured, "vendor=opaque")]


async def test_with_tracing_on_the_handler_spans_of_the_three_services_share_the_trace(
        bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", generate_keypair()["private_key"])
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    court = new_authority()
    await register_authority(bootstrap, court)
    sent = new_traceparent()
    tracing.use_provider(provider)
    try:
        async with pipeline(bootstrap, database_url):
            for schema in ("intake", "legal_review", "disclosure"):
                await wait_for_authority(database_url, schema, court["authority_id"])
            username = await suspect_on_file(bootstrap, database_url)
            data = signed(request_data(court, suspect={"username": "@" + username}), court["private_key"])
            await submit_structured(bootstrap, data, sent, "vendor=opaque")
            issued = await disclosure_of(bootstrap, data["request_id"])
    finally:
        tracing.stop_tracing()

    trace_id = int(sent[3:35], 16)
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    def done(name: str):
        """The handler's attempt that counted (not one replayed alone after its batch failed)."""
        [span] = [s for s in by_name[name] if s.status.is_ok and not s.attributes.get("warden.retried")]
        return span
    intake_span = done("process legal.requests.submitted")
    review_span = done("process legal.requests.received")
    disclosure_span = done("process legal.requests.decided")
    # Each handler's span is the child of the one whose event it handles; the first, of what was sent.
    assert intake_span.parent.span_id == int(sent[36:52], 16)
    assert review_span.parent.span_id == intake_span.context.span_id
    assert disclosure_span.parent.span_id == review_span.context.span_id
    assert {s.attributes["warden.service"] for s in (intake_span, review_span, disclosure_span)} == {
        "intake", "legal-review", "disclosure"}
    assert disclosure_span.attributes["cloudevents.event_type"] == "warden.legal.request.approved.v1"
    # The disclosure event carries the trace on from disclosure's span, with the sender's tracestate;
    # the relay's publish span of that event joins the trace too.
    assert issued["traceparent"] == f"00-{sent[3:35]}-{disclosure_span.context.span_id:016x}-01"
    assert issued["tracestate"] == "vendor=opaque"
    assert any(s.parent.span_id == disclosure_span.context.span_id
               for s in by_name["publish legal.disclosures.issued"])


async def test_a_forged_request_is_dead_lettered_in_its_trace_and_the_refusal_carries_it(bootstrap, database_url):
    """An impostor's request: the DLQ's publish and the authority's `invalid` status stay in the sender's
    trace, and the handler's span says why the event was refused."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    court, impostor = new_authority(), new_authority()
    await register_authority(bootstrap, court)
    data = signed(request_data(court), impostor["private_key"])
    sent = new_traceparent()
    tracing.use_provider(provider)
    try:
        async with running("intake", service_settings(bootstrap, database_url)):
            await wait_for_authority(database_url, "intake", court["authority_id"])
            await submit_structured(bootstrap, data, sent, "vendor=opaque")
            [status] = await wait_for_events(bootstrap, "legal.requests.status",
                                             lambda e: e["data"]["request_id"] == data["request_id"])
            deadline = time.monotonic() + 20
            while not [s for s in exporter.get_finished_spans() if s.name.endswith(".dlq")]:
                assert time.monotonic() < deadline, "the dead letter was never published"
                await asyncio.sleep(0.2)
    finally:
        tracing.stop_tracing()

    trace_id = int(sent[3:35], 16)
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    # A bad signature is final only once the registry is read to its end (UnknownYet): the batch's first pass
    # is rolled back at the first such refusal (a retried span in that event's trace) and done again, where it
    # is refused for good. The topic is shared: that first refusal may be another test's forgery of the same
    # batch (no retried span here), and an event of theirs failing a pass has each pass replayed event by event.
    attempts = sorted((s for s in spans if s.name == "process legal.requests.submitted"), key=lambda s: s.start_time)
    *retried, handled = attempts
    assert len(retried) <= 3 and all(r.attributes["warden.retried"] and r.status.is_unset for r in retried)
    assert not handled.status.is_ok
    [dead_letter] = [s for s in spans if s.name == "publish legal.requests.submitted.dlq"]
    assert handled.attributes["warden.dlq.reason"] == "bad_signature"
    assert dead_letter.parent.span_id == handled.context.span_id
    assert status["data"]["status"] == "invalid"
    assert status["traceparent"] == f"00-{sent[3:35]}-{handled.context.span_id:016x}-01"
