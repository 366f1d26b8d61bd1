"""Kafka clients configured the one way Warden uses them, and topic creation."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from warden.contract.topics import TOPICS, all_topic_names

log = logging.getLogger(__name__)


def producer(bootstrap: str) -> AIOKafkaProducer:
    # Idempotence is off: Tansu lacks InitProducerId, and the outbox + inbox give
    # effectively-once without it (DESIGN.md). max_batch_size 1 MiB (aiokafka's default is
    # 16 KiB): a relay pass sends all its rows at once, and a partition batch that fills up
    # made the rest wait for it, so one pass of disclosure packages (a few KiB each, all to
    # the authority's partition) took ~5 produce requests instead of one (docs/performance.md).
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                            linger_ms=5, max_batch_size=1024 * 1024, max_request_size=2 * 1024 * 1024)


def consumer(bootstrap: str, group_id: str | None, **overrides) -> AIOKafkaConsumer:
    # fetch_max_wait_ms 50 (aiokafka's default is 500): Tansu answers a fetch only when that wait
    # ends, not when data arrives, which cost ~200 ms per hop (docs/performance.md). Against
    # Apache Kafka it only bounds how long an idle fetch is parked.
    options = dict(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
                   auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                   fetch_max_wait_ms=50)
    options.update(overrides)
    return AIOKafkaConsumer(**options)


async def start_with_retry(client, what: str, attempts: int = 60, delay: float = 0.5) -> None:
    """The broker may still be starting (or briefly away): keep trying, then give up loudly."""
    for attempt in range(1, attempts + 1):
        try:
            await client.start()
            return
        except KafkaConnectionError:
            if attempt == attempts:
                raise
            log.warning("kafka not reachable, retrying", extra={"client": what, "attempt": attempt})
            await asyncio.sleep(delay)


def topic_configs(name: str) -> dict[str, str]:
    base = TOPICS.get(name)
    if base is None:  # a DLQ: keep dead letters a month for investigation
        return {"retention.ms": str(30 * 24 * 3600 * 1000)}
    configs = {"retention.ms": str(base.retention_ms)}
    if base.compacted:
        configs["cleanup.policy"] = "compact"
    return configs


def partitions_of(name: str) -> int:
    base = TOPICS.get(name)
    return base.partitions if base else 1


async def create_topics(bootstrap: str, replication_factor: int = 1) -> list[str]:
    """Create every contract topic and DLQ that is missing; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await start_with_retry(admin, "admin")
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in all_topic_names() if n not in existing]
        if missing:
            try:
                await admin.create_topics([
                    NewTopic(n, partitions_of(n), replication_factor, topic_configs=topic_configs(n))
                    for n in missing])
            except KafkaError as exc:  # a concurrent creator won the race
                log.info("topic creation raced", extra={"error_type": type(exc).__name__})
        return missing
    finally:
        await admin.close()
