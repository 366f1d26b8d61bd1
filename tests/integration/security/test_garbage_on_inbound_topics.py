"""Hypothesis-generated garbage on every inbound topic, against the running service that consumes it.

Each test draws a batch (every class of garbage, several of each) in one Hypothesis
example, sends it between good events, and checks: every bad record is in the
topic's DLQ with a reason it may earn, the service is still up and ready, and
the good events before, between and after were processed.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from tests.integration.security.garbage import Garbage, draw_batch, garbage_for
from tests.support.kafka import produce_event, wait_for_records
from tests.support.processes import moderation_available
from tests.support.requests import new_authority, register_authority, registry_record, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority
from tests.support.waiting import until
from warden.runtime import kafka

PER_KIND = 3
FUZZ = settings(max_examples=1, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


def now() -> datetime:
    return datetime.now(timezone.utc)


async def send_batch(bootstrap: str, topic: str, batch: list[Garbage], good_between, tag: str) -> list[dict]:
    """Garbage tagged `x-fuzz`, with a good event before, after and after every few bad ones."""
    producer = kafka.producer(bootstrap, linger_ms=0, max_request_size=4 * 1024 * 1024)
    await producer.start()
    goods = [await good_between()]
    try:
        for seq, bad in enumerate(batch):
            headers = [*bad.headers, ("x-fuzz", tag.encode()), ("x-fuzz-seq", str(seq).encode())]
            await producer.send_and_wait(topic, bad.value, key=f"fuzz-{seq % 4}".encode(), headers=headers)
            if seq % 5 == 4:
                goods.append(await good_between())
    finally:
        await producer.stop()
    goods.append(await good_between())
    return goods


async def dead_letters(bootstrap: str, topic: str, batch: list[Garbage], tag: str) -> None:
    def ours(record) -> bool:
        return dict(record.headers).get("x-fuzz") == tag.encode()
    dead = await wait_for_records(bootstrap, f"{topic}.dlq", ours, count=len(batch), timeout=60, settle=1.0)
    by_seq = {}
    for record in dead:
        headers = dict(record.headers)
        by_seq.setdefault(int(headers["x-fuzz-seq"]), []).append(headers)
    assert sorted(by_seq) == list(range(len(batch))), "a bad record is missing from the DLQ"
    wrong = []
    for seq, bad in enumerate(batch):
        reason = by_seq[seq][0]["dlq.reason"].decode()
        if reason not in bad.reasons or not by_seq[seq][0]["dlq.error"]:
            wrong.append((bad.kind, reason, by_seq[seq][0]["dlq.error"][:200]))
    assert wrong == [], wrong


async def db_count(database_url: str, query: str, *args) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


# --- intake: legal.requests.submitted and legal.authorities ------------------------------------

AUTHORITY = new_authority()


def good_request() -> dict:
    return signed(request_data(AUTHORITY), AUTHORITY["private_key"])


def good_authority() -> dict:
    fresh = new_authority()
    return registry_record({k: v for k, v in fresh.items() if k != "private_key"})


REQUESTS = garbage_for("warden.legal.request.submitted.v1", good_request, ["request_id", "authority_id", "signature"])
AUTHORITIES = garbage_for("warden.legal.authority.registered.v1", good_authority,
                          ["authority_id", "name", "public_key"])


@FUZZ
@given(data=st.data())
def test_garbage_on_intake_topics_is_dead_lettered_and_good_requests_flow(bootstrap, database_url, data):
    requests = draw_batch(data, REQUESTS, PER_KIND)
    authorities = draw_batch(data, AUTHORITIES, 1)  # compacted, read by every service: keep it small
    tag = uuid.uuid4().hex

    async def scenario():
        await register_authority(bootstrap, AUTHORITY)
        async with running("intake", service_settings(bootstrap, database_url)) as runtime:
            await wait_for_authority(database_url, "intake", AUTHORITY["authority_id"])

            async def one_request():
                event = good_request()
                await produce_event(bootstrap, "legal.requests.submitted", "warden.legal.request.submitted.v1", event)
                return event

            async def one_authority():
                event = good_authority()
                await produce_event(bootstrap, "legal.authorities", "warden.legal.authority.registered.v1", event)
                return event
            goods = await send_batch(bootstrap, "legal.requests.submitted", requests, one_request, tag)
            good_authorities = await send_batch(bootstrap, "legal.authorities", authorities, one_authority, tag)
            await dead_letters(bootstrap, "legal.requests.submitted", requests, tag)
            await dead_letters(bootstrap, "legal.authorities", authorities, tag)
            ids = [g["request_id"] for g in goods]
            await until(lambda: db_count(database_url, "SELECT count(*) = $2 FROM intake.submissions"
                                         " WHERE request_id = ANY($1)", ids, len(ids)),
                        30, "the good events processed")
            known = [a["authority_id"] for a in good_authorities]
            await until(lambda: db_count(database_url, "SELECT count(*) = $2 FROM intake.authorities"
                                         " WHERE authority_id = ANY($1)", known, len(known)),
                        30, "the good events processed")
            assert all(runtime.readiness().values()), runtime.readiness()
    asyncio.run(scenario())


# --- disclosure: platform.subscribers -----------------------------------------------------------

def good_session() -> dict:
    return {"account_id": f"fuzz-acct-{uuid.uuid4().hex[:10]}", "ip": "203.0.113.9",
            "observed_at": (now() - timedelta(days=1)).isoformat()}


SUBSCRIBERS = garbage_for("warden.subscriber.session.observed.v1", good_session, ["account_id", "ip"])


@FUZZ
@given(data=st.data())
def test_garbage_on_the_subscriber_feed_is_dead_lettered_and_good_events_are_stored(bootstrap, database_url, data):
    batch = draw_batch(data, SUBSCRIBERS, PER_KIND)
    tag = uuid.uuid4().hex

    async def scenario():
        async with running("disclosure", service_settings(bootstrap, database_url)) as runtime:
            async def one_session():
                event = good_session()
                await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", event)
                return event
            goods = await send_batch(bootstrap, "platform.subscribers", batch, one_session, tag)
            await dead_letters(bootstrap, "platform.subscribers", batch, tag)
            ids = [g["account_id"] for g in goods]
            await until(lambda: db_count(database_url, "SELECT count(DISTINCT account_id) = $2 FROM"
                                         " disclosure.sessions WHERE account_id = ANY($1)", ids, len(ids)),
                        30, "the good events processed")
            assert all(runtime.readiness().values()), runtime.readiness()
    asyncio.run(scenario())


# --- moderation: content, reports and appeals -------------------------------------------------------

def good_report() -> dict:
    return {"report_id": f"fuzz-rep-{uuid.uuid4().hex[:10]}", "reporter_id": f"fuzz-user-{uuid.uuid4().hex[:6]}",
            "reported_at": now().isoformat(), "surface": "search",
            "content": {"kind": "channel", "id": f"fuzz-chan-{uuid.uuid4().hex[:6]}", "owner_account_id": None,
                        "title": "A channel", "text": None},
            "reason": "spam", "comment": "seen in search"}


def good_appeal() -> dict:
    return {"appeal_id": f"fuzz-app-{uuid.uuid4().hex[:10]}", "content_id": f"fuzz-chan-{uuid.uuid4().hex[:6]}",
            "account_id": "fuzz-owner", "statement": "This is a hiking group", "submitted_at": now().isoformat()}


def good_content() -> dict:
    return {"content_id": f"fuzz-chan-{uuid.uuid4().hex[:10]}", "kind": "channel", "owner_account_id": "fuzz-owner",
            "title": "A hiking group", "text": "Walks every Sunday", "language": "en", "public_in_search": True,
            "created_at": now().isoformat(), "updated_at": now().isoformat(),
            "media": [{"media_id": "m1", "pdq": "f" * 64, "quality": 90}]}


CONTENT = garbage_for("warden.platform.content.updated.v1", good_content, ["content_id", "kind"])
REPORTS = garbage_for("warden.moderation.report.submitted.v1", good_report, ["report_id", "reporter_id"])
APPEALS = garbage_for("warden.moderation.appeal.submitted.v1", good_appeal, ["appeal_id", "content_id", "account_id"])


@pytest.mark.skipif(not moderation_available(), reason="TODO: moderation service not built yet")
@FUZZ
@given(data=st.data())
def test_garbage_on_moderation_topics_is_dead_lettered_and_good_events_count(bootstrap, database_url, data,
                                                                               tmp_path_factory):
    from tests.integration.moderation.support import config, running_moderation

    reports, appeals = draw_batch(data, REPORTS, PER_KIND), draw_batch(data, APPEALS, 1)
    contents = draw_batch(data, CONTENT, 1)
    tag = uuid.uuid4().hex

    async def scenario():
        settings_ = service_settings(bootstrap, database_url)
        async with running_moderation(settings_, config()) as http:
            async def one(topic, event_type, build):
                async def send():
                    event = build()
                    await produce_event(bootstrap, topic, event_type, event)
                    return event
                return send
            good_reports = await send_batch(bootstrap, "moderation.reports.submitted", reports, await one(
                "moderation.reports.submitted", "warden.moderation.report.submitted.v1", good_report), tag)
            good_appeals = await send_batch(bootstrap, "moderation.appeals.submitted", appeals, await one(
                "moderation.appeals.submitted", "warden.moderation.appeal.submitted.v1", good_appeal), tag)
            good_contents = await send_batch(bootstrap, "platform.content", contents, await one(
                "platform.content", "warden.platform.content.updated.v1", good_content), tag)
            await dead_letters(bootstrap, "moderation.reports.submitted", reports, tag)
            await dead_letters(bootstrap, "moderation.appeals.submitted", appeals, tag)
            await dead_letters(bootstrap, "platform.content", contents, tag)
            content_ids = [c["content_id"] for c in good_contents]
            await until(lambda: db_count(database_url, "SELECT count(*) = $2 FROM moderation.platform_content"
                                         " WHERE content_id = ANY($1)", content_ids, len(content_ids)),
                        30, "the good events processed")
            ids = [r["report_id"] for r in good_reports]
            await until(lambda: db_count(database_url, "SELECT count(*) = $2 FROM moderation.reports"
                                         " WHERE report_id = ANY($1)", ids, len(ids)),
                        30, "the good events processed")
            appeal_ids = [a["appeal_id"] for a in good_appeals]
            await until(lambda: db_count(database_url, "SELECT count(*) = $2 FROM moderation.appeals"
                                         " WHERE appeal_id = ANY($1)", appeal_ids, len(appeal_ids)),
                        30, "the good events processed")
            assert (await http.get("/readyz")).status_code == 200
    asyncio.run(scenario())

