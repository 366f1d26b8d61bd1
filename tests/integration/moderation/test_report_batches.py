"""Reports scored set-based (reports.score_reports, a batch handler) by the shared consumer loop, on real Postgres.

One batch must leave exactly what the same events one per batch leave; a failing
report replays the batch event by event and dead-letters only that report; a
redelivered batch changes nothing; workers scoring the same items from different
partitions at the same time (any key) delist each item once, from the windows
Postgres holds; and through the broker, reports trickling in many small batches
all count. The platform describes every item first (platform.content), and the
reporters here start with established trust (`trust_new=1.0`): these tests are
about the windows, not about brigading (test_integrity.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

from aiokafka.structs import ConsumerRecord

from moderation.handlers import Effects, settle_reports
from moderation.service import MIGRATIONS, build_service
from tests.integration.moderation.support import UPDATED, config, facts, running_moderation
from tests.support.waiting import until
from tests.support.stack import service_settings
from warden.contract.envelope import encode_structured, new_event
from warden.runtime import kafka
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.dead_letters import REPLAY_OFFSET
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate

REPORTS, REPORT = "moderation.reports.submitted", "warden.moderation.report.submitted.v1"
TITLES = {"ban": "KNOWN-ABUSE-SAMPLE-0001", "sold": "Buy cocaine here"}  # what the platform says these items are


def described(offset: int, content_id: str, title: str = "Weekend hiking group", partition: int = 0) -> ConsumerRecord:
    """The platform's description of an item, on platform.content."""
    data = facts({"kind": "channel", "id": content_id, "owner_account_id": f"acc-{content_id}", "title": title,
                  "text": None})
    value, headers = encode_structured(new_event(UPDATED, "/tests", data))
    return ConsumerRecord("platform.content", partition, offset, 0, 0, content_id.encode(), value, None, 0, 0,
                          tuple(headers))


def content_of(run: str) -> list[ConsumerRecord]:
    kinds = ("mob", "rep", "two", "ban", "flag", "sold", "late")
    return [described(n, f"{kind}-{run}", TITLES.get(kind, "Weekend hiking group")) for n, kind in enumerate(kinds)]


def record(offset: int, content_id: str, reporter: str, reason: str = "drugs", *, report_id: str | None = None,
           title: str = "Weekend hiking group", partition: int = 0,
           age: timedelta = timedelta(minutes=5)) -> ConsumerRecord:
    data = {"report_id": report_id or uuid.uuid4().hex, "reporter_id": reporter,
            "reported_at": (datetime.now(timezone.utc) - age).isoformat(), "surface": "search",
            "content": {"kind": "channel", "id": content_id, "owner_account_id": f"acc-{content_id}",
                        "title": title, "text": None},
            "reason": reason, "comment": None}
    value, headers = encode_structured(new_event(REPORT, "/tests", data))
    return ConsumerRecord(REPORTS, partition, offset, 0, 0, content_id.encode(), value, None, 0, 0, tuple(headers))


def reports_of(run: str) -> list[ConsumerRecord]:
    """An item mobbed to delisting and reported after; a reporter repeating; the same event twice; items whose
    platform facts match banks (one delisted on arrival, one whose match adds to the score of its reports; the
    titles the reporters type match nothing); a trusted flagger; a report older than the window, and a
    reporter's first report inside it counting, not their later ones; garbage."""
    mobbed, repeated, twice, banned, flagged, sold = (f"{kind}-{run}" for kind in ("mob", "rep", "two", "ban",
                                                                                  "flag", "sold"))
    records = [record(0, mobbed, f"r-{run}-old", "child_abuse", age=timedelta(hours=25))]  # outside the window
    records += [record(1 + n, mobbed, f"r-{run}-{n}") for n in range(4)]
    records += [record(5, repeated, f"r-{run}-x", "weapons"), record(6, repeated, f"r-{run}-x", "weapons")]
    sent_twice = record(7, twice, f"r-{run}-t")
    records += [sent_twice, dataclasses.replace(sent_twice, offset=8)]  # the same event redelivered
    records += [record(9, banned, f"r-{run}-b", "other"), record(10, banned, f"r-{run}-c", "spam")]
    records += [record(11, flagged, "org-hotline", "spam")]
    records.append(ConsumerRecord(REPORTS, 0, 12, 0, 0, b"k", b"{not json", None, 0, 0, ()))
    records += [record(13, sold, f"r-{run}-s1", "spam", title="KNOWN-TERROR-SAMPLE-0001"),  # 1 + the bank's 4
                record(14, sold, f"r-{run}-s2", "spam")]  # 1 more, the bank match still counts: 6
    late = f"late-{run}"  # one reporter: outside the window, then spam, then child abuse: only the spam counts (1)
    records += [record(15, late, f"r-{run}-l", "other", age=timedelta(hours=30)),
                record(16, late, f"r-{run}-l", "spam", age=timedelta(hours=1)), record(17, late, f"r-{run}-l", "child_abuse")]
    return records


@contextlib.asynccontextmanager
async def consumer_loop(database_url: str, schema: str):
    """The moderation service's consumer loop without a Kafka consumer: batches are handed to `process`."""
    await migrate(database_url, schema, [RUNTIME_MIGRATIONS, *MIGRATIONS])
    pool = await create_pool(database_url, schema, 2)
    service = build_service(config(trust_new=1.0, classifier=False))  # text banks only: the scores below are theirs
    try:
        yield ConsumerLoop(service, pool, consumer=None, batch_max_records=500, poll_timeout_ms=100,
                           retry_initial_s=0.05, retry_max_s=0.5), pool
    finally:
        await pool.close()


async def state(pool) -> dict:
    async with pool.acquire() as conn:
        return {
            "reports": sorted(tuple(r) for r in await conn.fetch(
                "SELECT content_id, reporter_id, contribution FROM reports")),
            "content": sorted(tuple(r) for r in await conn.fetch("SELECT content_id, state, category FROM content")),
            "queue": sorted(tuple(r) for r in await conn.fetch(
                "SELECT content_id, priority, urgent, trusted, score, reason, automated FROM queue")),
            "decisions": sorted(tuple(r) for r in await conn.fetch(
                "SELECT content_id, action, category, automated_detection, automated_decision, facts FROM decisions")),
            "banks": sorted(tuple(r) for r in await conn.fetch("SELECT content_id, bank_id, contribution FROM bank_matches")),
            "outbox": sorted(r["topic"] for r in await conn.fetch("SELECT topic FROM outbox")),
            "inbox": await conn.fetchval("SELECT count(*) FROM inbox"),
        }


async def test_a_batch_leaves_what_the_same_reports_one_by_one_leave(database_url):
    run = uuid.uuid4().hex[:8]
    records = reports_of(run)
    async with consumer_loop(database_url, "moderation") as (batched, pool_a), \
            consumer_loop(database_url, "moderation_b") as (single, pool_b):
        for loop in (batched, single):
            await loop.process(content_of(run))
        await batched.process(records)
        for r in records:
            await single.process([r])
        a, b = await state(pool_a), await state(pool_b)
    assert a == b
    delisted = sorted(c for c, s, _ in a["content"] if s == "delisted")
    assert delisted == [f"ban-{run}", f"mob-{run}"]  # the mob at its third reporter, the bank match on arrival
    assert [d[5] for d in a["decisions"] if d[0] == f"mob-{run}"] == [
        "Reports from 3 distinct reporters, with established trust behind 12 of it, reached a score of 12 in 24 h "
        "(delisting threshold 12)."]
    assert a["outbox"].count("moderation.decisions") == 2 and a["outbox"].count("search.delistings") == 2
    assert a["outbox"].count(REPORTS + ".dlq") == 1  # the garbage
    assert {q[0]: q[4] for q in a["queue"]} == {f"mob-{run}": 12.0, f"ban-{run}": 10.0, f"flag-{run}": 2.5,
                                                 f"sold-{run}": 6.0, f"rep-{run}": 4.0, f"two-{run}": 4.0}
    assert sorted(b[1] for b in a["banks"]) == ["drugs-for-sale", "known-abuse-material"]
    assert len(a["reports"]) == 16  # the event sent twice counts once, by its report's key
    assert {r[0] for r in a["reports"]} <= {c[0] for c in a["content"]}  # every report's content has its row
    assert a["inbox"] == 1 + 7  # the garbage and the platform's descriptions: valid reports take no inbox row


async def test_a_failing_report_replays_the_batch_and_dead_letters_only_that_report(database_url):
    run = uuid.uuid4().hex[:8]
    broken = f"rep-{run}"
    records = [record(r.offset, broken, "r", title="nul \x00 byte") if r.key == broken.encode() else r
               for r in reports_of(run)]  # text Postgres refuses: the statement fails
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        await loop.process(content_of(run))
        await loop.process(records)
        found = await state(pool)
        await loop.process(records)  # redelivered: nothing is recorded or dead-lettered twice
        again = await state(pool)
        letters = """SELECT header_names, header_values FROM outbox WHERE topic LIKE '%.dlq' ORDER BY id"""
        async with pool.acquire() as conn:
            reasons = [dict(zip(r["header_names"], r["header_values"]))["dlq.reason"] for r in await conn.fetch(letters)]
            # `warden dlq replay` of the first letter: handled again, and dead-lettered again as it still fails
            replayed = dataclasses.replace(records[5], offset=99, headers=(*records[5].headers, (REPLAY_OFFSET, b"0")))
            await loop.process([replayed])
            replayed_reasons = [dict(zip(r["header_names"], r["header_values"]))["dlq.reason"]
                                for r in await conn.fetch(letters)]
    assert reasons == [b"handler_error", b"handler_error", b"undecodable"]  # both reports of the broken item
    assert replayed_reasons == reasons + [b"handler_error"]
    assert not [r for r in found["reports"] if r[0] == broken]  # their savepoints were rolled back
    assert found["outbox"].count("search.delistings") == 2  # the rest of the batch went through
    assert found["inbox"] == 1 + 7 + 2  # each report dead-lettered claimed its row then
    assert again == found


async def test_a_redelivered_batch_changes_nothing(database_url):
    run = uuid.uuid4().hex[:8]
    records = reports_of(run)
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        await loop.process(content_of(run))
        await loop.process(records)
        before = await state(pool)
        await loop.process(records)
        assert await state(pool) == before


async def test_workers_on_different_partitions_delist_each_item_once_whatever_the_key(database_url):
    """Three workers at once, each with one report of every item (keys that land anywhere): 4 + 4 + 4 = 12."""
    run = uuid.uuid4().hex[:8]
    items = [f"spread-{run}-{n}" for n in range(40)]
    async with consumer_loop(database_url, "moderation") as (first, pool), \
            consumer_loop(database_url, "moderation") as (second, _), \
            consumer_loop(database_url, "moderation") as (third, _):
        await first.process([described(n, item) for n, item in enumerate(items)])
        batches = [[record(n, item, f"w{w}-{item}", partition=w) for n, item in enumerate(items)] for w in range(3)]
        batches[1].reverse()  # locks taken in another order than the batch's must not deadlock
        await asyncio.gather(*(loop.process(batch) for loop, batch in zip((first, second, third), batches)))
        found = await state(pool)
    assert found["outbox"].count("search.delistings") == len(items)
    assert sorted(d[0] for d in found["decisions"]) == sorted(items)
    assert {q[4] for q in found["queue"]} == {12.0}


async def test_reports_through_the_broker_in_many_small_batches_all_count(bootstrap, database_url):
    run = uuid.uuid4().hex[:8]
    items = [f"burst-{run}-{n}" for n in range(30)]

    async def burst(reporter: str) -> None:
        producer = kafka.producer(bootstrap, linger_ms=0, max_batch_size=16384, max_request_size=1024 * 1024)
        await producer.start()
        try:
            for offset, item in enumerate(items):
                r = record(offset, item, f"{reporter}-{item}")
                await producer.send_and_wait(REPORTS, r.value, key=r.key, headers=list(r.headers))
        finally:
            await producer.stop()

    async def count(sql: str) -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval(sql, f"burst-{run}-%")

    settings = service_settings(bootstrap, database_url, batch_max_records=3)
    async with running_moderation(settings, config(trust_new=1.0)):
        pool = await create_pool(database_url, "moderation", 1)
        try:
            producer = kafka.producer(bootstrap)
            await producer.start()
            try:
                for n, item in enumerate(items):
                    r = described(n, item)
                    await producer.send_and_wait("platform.content", r.value, key=r.key, headers=list(r.headers))
            finally:
                await producer.stop()
            await until(lambda: count("SELECT count(*) = 30 FROM platform_content WHERE content_id LIKE $1"))
            await burst("a")
            await burst("b")  # drugs 4 + 4 = 8 per item: queued, not delisted
            await until(lambda: count("SELECT count(*) = 60 FROM reports WHERE content_id LIKE $1"))
            assert await count("SELECT count(*) FROM queue WHERE content_id LIKE $1 AND score = 8") == 30
            await burst("c")  # 12 only if each item's earlier reporters are in the window read from Postgres
            await until(lambda: count("SELECT count(*) = 30 FROM decisions WHERE content_id LIKE $1"))
        finally:
            await pool.close()


async def test_content_described_while_a_batch_waits_for_its_lock_is_scored_not_left_waiting(database_url):
    """The platform's handler holds the item's row (describing it) while a batch of its reports waits for the
    lock: once it commits, the batch sees the item described and scores the reports (none is left pending)."""
    run = uuid.uuid4().hex[:8]
    item = f"race-{run}"
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        async with pool.acquire() as describing:
            tx = describing.transaction()
            await tx.start()
            await describing.execute(
                """INSERT INTO platform_content (content_id, kind, owner_account_id, title, public_in_search,
                                                 created_at, updated_at) VALUES ($1, 'channel', 'acc', 'Hiking', true,
                                                 now(), now())""", item)
            await describing.execute("INSERT INTO content (content_id, kind, first_reported_at) VALUES ($1, 'channel',"
                                     " now())", item)
            scoring = asyncio.create_task(loop.process([record(n, item, f"r-{run}-{n}") for n in range(3)]))
            await asyncio.sleep(1.0)
            assert not scoring.done()  # waiting for the row
            await tx.commit()
        await scoring
        async with pool.acquire() as conn:
            pending = await conn.fetchval("SELECT count(*) FROM reports WHERE content_id = $1"
                                          " AND pending_since IS NOT NULL", item)
            state = await conn.fetchval("SELECT state FROM content WHERE content_id = $1", item)
    assert pending == 0 and state == "delisted"  # three established reporters: 12


async def test_reports_are_scored_while_a_decision_holds_their_reporter_and_new_reporters_get_no_row(database_url):
    """A moderator's decision in progress holds a reporter's row (settle_reports locks it to move the trust): a
    batch with that reporter's new reports is scored meanwhile, not held until the decision commits; a reporter
    first seen in the batch gets no row (it stands at trust_new until something about it is decided)."""
    run = uuid.uuid4().hex[:8]
    item, known, first_seen = f"held-{run}", f"r-{run}-known", f"r-{run}-new"
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        await loop.process([described(0, item)])
        async with pool.acquire() as deciding:
            await deciding.execute("INSERT INTO reporters (reporter_id, trust) VALUES ($1, 1.0)", known)
            async with deciding.transaction():
                await deciding.execute("SELECT trust FROM reporters WHERE reporter_id = $1 FOR UPDATE", known)
                await asyncio.wait_for(loop.process([record(1, item, known), record(2, item, first_seen)]),
                                       timeout=20)
        async with pool.acquire() as conn:
            counted = await conn.fetchval("SELECT count(*) FROM reports WHERE content_id = $1", item)
            rows = await conn.fetchval("SELECT count(*) FROM reporters WHERE reporter_id = $1", first_seen)
    assert counted == 2
    assert rows == 0


async def test_a_batch_does_not_wait_for_another_transaction_that_saw_the_same_new_reporter(database_url):
    """Two workers (or two batches in flight) scoring reports by the same reporter seen for the first time never
    wait for each other: scoring writes no reporter row, so an uncommitted one elsewhere holds nothing up."""
    run = uuid.uuid4().hex[:8]
    item, reporter = f"new-{run}", f"r-{run}-new"
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        await loop.process([described(0, item)])
        async with pool.acquire() as other:
            async with other.transaction():  # another transaction holds the reporter's unique key, uncommitted
                await other.execute("INSERT INTO reporters (reporter_id, trust) VALUES ($1, 1.0)", reporter)
                await asyncio.wait_for(loop.process([record(1, item, reporter)]), timeout=10)
                scored = await other.fetchval("SELECT count(*) FROM reports WHERE content_id = $1", item)
    assert scored == 1  # committed while the other transaction was still open


async def test_a_human_outcome_gives_a_reporter_without_a_row_one_with_its_trust_moved(database_url):
    """Reporters first seen have no row; a moderator's outcome on their report creates it at trust_new and moves
    the trust from there (handlers.reporter_row)."""
    run = uuid.uuid4().hex[:8]
    item, reporter = f"settled-{run}", f"r-{run}-new"
    cfg = config(trust_new=0.5)
    async with consumer_loop(database_url, "moderation") as (loop, pool):
        await loop.process([described(0, item), record(1, item, reporter)])
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM reporters WHERE reporter_id = $1", reporter) == 0
            async with conn.transaction():
                await settle_reports(conn, item, upheld=True, now=datetime.now(timezone.utc), cfg=cfg,
                                     effects=Effects(), decision_id=None)
            trust = await conn.fetchval("SELECT trust FROM reporters WHERE reporter_id = $1", reporter)
    assert trust is not None and trust > 0.5
