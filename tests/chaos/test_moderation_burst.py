"""kill -9 of moderation mid-burst: every report counted once, every decision emitted once.

The platform first describes every item on `platform.content` (moderation acts on
nothing else) and the worker takes the descriptions in; then a burst of reports is put
on `moderation.reports.submitted`. While the worker drains it as fast as it can, it is
killed with SIGKILL three times
(at a fifth, half and four fifths of the burst recorded) and started again at once.
Afterwards Postgres holds each report once, each item reported by enough people has
exactly one delisting decision and the others none, and the bus carries, per delisted
item, one statement of reasons and one delisting (a redelivered copy of the same event
is allowed: consumers drop it in their inbox; a second decision is not).
"""
from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from datetime import datetime, timezone

import asyncpg
import pytest

from warden.contract.envelope import encode_structured, new_event
from warden.embedded import EmbeddedKafka, EmbeddedPostgres
from warden.runtime import kafka
from warden.runtime.kafka import create_topics
from tests.support.kafka import read_topic
from tests.support.processes import ServiceProcess, moderation_available
from tests.support.waiting import until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not moderation_available(), reason="moderation is not in this tree")]

HOT_ITEMS = 600        # five reporters each, for drugs: delisted at the third report (3 x 4 >= 12)
COLD_ITEMS = 9_000     # one report each, for spam: recorded, never delisted
KILL_AT = (0.2, 0.5, 0.8)


def descriptions(items: set[str]) -> list[tuple[bytes, bytes, list]]:
    now = datetime.now(timezone.utc).isoformat()
    out = []
    for content_id in sorted(items):
        data = {"content_id": content_id, "kind": "channel", "owner_account_id": f"owner-{content_id}",
                "title": "A public channel", "text": "News and chat for members.", "language": "en",
                "public_in_search": True, "created_at": now, "updated_at": now}
        value, headers = encode_structured(new_event("warden.platform.content.updated.v1", "/chaos/platform", data))
        out.append((content_id.encode(), value, headers))
    return out


def burst(run: str) -> tuple[list[tuple[bytes, bytes, list]], set[str], set[str], set[tuple[str, str]]]:
    """The reports, interleaved as a busy platform sends them; the hot and cold items; (reporter, report) keys."""
    now = datetime.now(timezone.utc).isoformat()
    hot = [f"chaos-{run}-hot-{n}" for n in range(HOT_ITEMS)]
    cold = [f"chaos-{run}-cold-{n}" for n in range(COLD_ITEMS)]
    reports = [(c, f"{c}-by-{k}", "drugs") for k in range(5) for c in hot] + [(c, f"{c}-by-0", "spam") for c in cold]
    random.Random(run).shuffle(reports)
    records, keys = [], set()
    for n, (content_id, reporter, reason) in enumerate(reports):
        report_id = f"{run}-{n}"
        data = {"report_id": report_id, "reporter_id": reporter, "reported_at": now, "surface": "search",
                "content": {"kind": "channel", "id": content_id, "owner_account_id": None, "title": "t", "text": None},
                "reason": reason, "comment": None}
        value, headers = encode_structured(new_event("warden.moderation.report.submitted.v1", "/chaos", data))
        records.append((content_id.encode(), value, headers))
        keys.add((reporter, report_id))
    return records, set(hot), set(cold), keys


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list]]) -> None:
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, headers=headers)
                   for key, value, headers in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def fetchval(database_url: str, query: str, *args):
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        return await conn.fetchval(query, *args)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None  # moderation has not created its schema yet
    finally:
        await conn.close()


async def test_kill_minus_nine_mid_burst_counts_every_report_once_and_emits_every_decision_once(tmp_path):
    broker = EmbeddedKafka(log_file=tmp_path / "tansu.log").start()
    postgres = EmbeddedPostgres(tmp_path / "pg").start()
    service = None
    try:
        await create_topics(broker.bootstrap)
        run = uuid.uuid4().hex[:8]
        records, hot, cold, keys = burst(run)
        await produce(broker.bootstrap, "platform.content", descriptions(hot | cold))
        # Reporters start established, so that five reports delist by volume (as in the bench). Batches of 200
        # records, not the service's 1,000: the burst is then recorded in steps small enough for each kill to land
        # inside it.
        service = ServiceProcess("moderation", bootstrap=broker.bootstrap, database_url=postgres.url,
                                 group_prefix=f"chaos-{run}", log_dir=tmp_path,
                                 extra_env={"WARDEN_MODERATION_TRUST_NEW": "1.0",
                                            "WARDEN_BATCH_MAX_RECORDS": "200"}).start()
        described = "SELECT count(*) FROM moderation.platform_content WHERE content_id LIKE $1"

        async def all_described() -> bool:
            return await fetchval(postgres.url, described, f"chaos-{run}-%") == len(hot | cold)
        await until(all_described, 300, "every item described", interval=0.5)
        await produce(broker.bootstrap, "moderation.reports.submitted", records)
        stored = "SELECT count(*) FROM moderation.reports WHERE report_id LIKE $1"
        killed_at = []
        for share in KILL_AT:
            async def reached() -> int | None:
                n = await fetchval(postgres.url, stored, f"{run}-%")
                return n if n is not None and n >= share * len(keys) else None
            killed_at.append(await until(reached, 300, f"{share:.0%} of the burst recorded", interval=0.05))
            service.kill9()
            service.start()
        assert all(n < len(keys) for n in killed_at), f"a kill came after the burst: {killed_at}"

        async def drained() -> bool:
            n = await fetchval(postgres.url, stored, f"{run}-%")
            return n == len(keys) and await fetchval(postgres.url, "SELECT count(*) FROM moderation.outbox") == 0
        await until(drained, 300, "every report recorded and the outbox drained", interval=0.5)

        conn = await asyncpg.connect(postgres.url)
        try:
            rows = await conn.fetch("SELECT reporter_id, report_id FROM moderation.reports WHERE report_id LIKE $1",
                                    f"{run}-%")
            decided = await conn.fetch("SELECT decision_id::text, content_id FROM moderation.decisions"
                                       " WHERE content_id LIKE $1", f"chaos-{run}-%")
        finally:
            await conn.close()
        assert sorted((r["reporter_id"], r["report_id"]) for r in rows) == sorted(keys)  # each report once
        decisions_by_item = defaultdict(set)
        for r in decided:
            decisions_by_item[r["content_id"]].add(r["decision_id"])
        assert set(decisions_by_item) == hot
        assert all(len(ids) == 1 for ids in decisions_by_item.values()), "an item decided twice"

        statements, delisted = defaultdict(set), defaultdict(set)
        for record in await read_topic(broker.bootstrap, "moderation.decisions"):
            event = json.loads(record.value)
            if event["data"]["content_id"].startswith(f"chaos-{run}-"):
                statements[event["data"]["content_id"]].add((event["id"], event["data"]["decision_id"]))
        for record in await read_topic(broker.bootstrap, "search.delistings"):
            event = json.loads(record.value)
            if event["data"]["content_id"].startswith(f"chaos-{run}-"):
                delisted[event["data"]["content_id"]].add((event["id"], event["data"]["decision_id"]))
        assert set(statements) == hot and set(delisted) == hot
        for item in hot:
            [decision_id] = decisions_by_item[item]
            assert [d for _, d in statements[item]] == [decision_id], f"{item}: {statements[item]}"
            assert [d for _, d in delisted[item]] == [decision_id], f"{item}: {delisted[item]}"
        assert not any(item in cold for item in statements)
        assert service.kills == len(KILL_AT)
    finally:
        if service is not None and service.alive():
            service.terminate()
        broker.stop()
        postgres.stop()
