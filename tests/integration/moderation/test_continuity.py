"""Reports faust skipped are not lost (continuity.py), on the real broker and Postgres.

What faust does across a rebalance, made to happen on purpose: its consumer group's
committed offsets are moved past reports it never handed to the agent, while
moderation's own record of where it is (`stream_progress`) stays before them.
Moderation must read those reports back and count every one: before the next
batch of the same partition, or, when nothing more arrives, through the catch-up.
"""
from __future__ import annotations

import uuid

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from moderation.service import MIGRATIONS
from moderation.streams import PARTITIONS, REPORTS, home_partition
from tests.integration.moderation.support import config, content, report, running_moderation, until
from tests.support.stack import service_settings
from warden.runtime import kafka
from warden.runtime.database import create_pool, migrate

REPORTS_PARTITIONS = [TopicPartition(REPORTS, p) for p in range(PARTITIONS)]


def content_in_each_partition(run: str) -> list[dict]:
    """One content item whose home is each partition of the reports topic."""
    found: dict[int, dict] = {}
    n = 0
    while len(found) < PARTITIONS:
        item = content(id=f"chan-{run}-{n}")
        found.setdefault(home_partition(item["id"]), item)
        n += 1
    return [found[p] for p in range(PARTITIONS)]


async def ends_of_reports(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = kafka.consumer(bootstrap, None, auto_offset_reset="latest", fetch_max_wait_ms=500)
    await consumer.start()
    try:
        return await consumer.end_offsets(REPORTS_PARTITIONS)
    finally:
        await consumer.stop()


async def skipped_by_faust(bootstrap: str, database_url: str, group: str, reporters: list[str], items: list[dict]):
    """Reports that faust's group has committed past, while moderation's place is before them."""
    before = await ends_of_reports(bootstrap)
    for reporter in reporters:
        for item in items:
            await report(bootstrap, item, reporter)
    after = await ends_of_reports(bootstrap)
    await migrate(database_url, "moderation", MIGRATIONS)
    pool = await create_pool(database_url, "moderation", 1)
    async with pool.acquire() as conn:
        await conn.executemany("INSERT INTO stream_progress (topic, partition, next_offset) VALUES ($1, $2, $3)",
                               [(tp.topic, tp.partition, offset) for tp, offset in before.items()])
    await pool.close()
    committer = kafka.consumer(bootstrap, group, auto_offset_reset="latest", fetch_max_wait_ms=500)
    await committer.start()
    try:
        committer.assign(REPORTS_PARTITIONS)
        await committer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in after.items()})
    finally:
        await committer.stop()


async def count(database_url: str, run: str, table: str, where: str = "true") -> int:
    pool = await create_pool(database_url, "moderation", 1)
    try:
        async with pool.acquire() as conn:
            return await conn.fetchval(f"SELECT count(*) FROM {table} WHERE content_id LIKE $1 AND {where}",
                                       f"chan-{run}-%")
    finally:
        await pool.close()


def recovered() -> float:
    return REGISTRY.get_sample_value("warden_moderation_skipped_events_recovered_total", {"topic": REPORTS}) or 0.0


async def all_reports_stored(database_url: str, run: str, expected: int) -> None:
    async def stored() -> bool:
        return await count(database_url, run, "reports") == expected
    await until(stored, timeout=30)


async def test_reports_faust_committed_past_are_read_back_before_the_next_batch(bootstrap, database_url, tmp_path):
    run = uuid.uuid4().hex[:8]
    settings = service_settings(bootstrap, database_url)
    items = content_in_each_partition(run)
    await skipped_by_faust(bootstrap, database_url, settings.group_id("moderation"), ["u1", "u2"], items)
    # No catch-up in this test: only a later batch of the same partition can bring them back.
    before = recovered()
    async with running_moderation(settings, config(tmp_path, catch_up_interval_s=3600)):
        for item in items:
            await report(bootstrap, item, "u3")
        await all_reports_stored(database_url, run, 3 * PARTITIONS)
    assert recovered() - before == 2 * PARTITIONS
    # drugs 4 x 3 reporters = 12: delisted only if the read-back reports were scored before u3's
    assert await count(database_url, run, "content", "state = 'delisted'") == PARTITIONS


async def test_a_partition_left_behind_with_nothing_new_is_caught_up(bootstrap, database_url, tmp_path):
    run = uuid.uuid4().hex[:8]
    settings = service_settings(bootstrap, database_url)
    items = content_in_each_partition(run)
    await skipped_by_faust(bootstrap, database_url, settings.group_id("moderation"), ["u1", "u2", "u3"], items)
    async with running_moderation(settings, config(tmp_path, catch_up_interval_s=0.5)):
        await all_reports_stored(database_url, run, 3 * PARTITIONS)
    # through the repartition topic into the windowed table like any report: three reporters delist
    assert await count(database_url, run, "content", "state = 'delisted'") == PARTITIONS
