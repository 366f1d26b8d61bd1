"""Test helpers to put events on the real broker and read what came out."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka


async def produce_raw(bootstrap: str, topic: str, value: bytes | None, *, key: bytes | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
    producer = kafka.producer(bootstrap, linger_ms=0, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        return await producer.send_and_wait(topic, value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def produce_event(bootstrap: str, topic: str, event_type: str, data: dict[str, Any],
                        source: str = "/tests", event_id: str | None = None) -> dict[str, Any]:
    """Publish a structured CloudEvent; returns the event (its id is what the inbox keys on)."""
    event = new_event(event_type, source, data, event_id=event_id)
    value, headers = encode_structured(event)
    key = TOPICS[topic].key_of(data) if topic in TOPICS else None
    await produce_raw(bootstrap, topic, value, key=key.encode() if key else None, headers=headers)
    return event


async def read_topic(bootstrap: str, topic: str, since: dict[int, int] | None = None) -> list[ConsumerRecord]:
    """Every record on the topic now, from the beginning or from the offsets `since` (partition -> offset, as
    `topic_ends` gave them before the test acted: a topic the whole session shares grows long) (no consumer group)."""
    consumer = kafka.consumer(bootstrap, None, auto_offset_reset="latest", fetch_max_wait_ms=500)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            if since and since.get(tp.partition):
                consumer.seek(tp, since[tp.partition])
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while True:
            behind = False
            for tp in partitions:
                if await consumer.position(tp) < ends[tp]:
                    behind = True
            if not behind:
                return records
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()


def event_of(record: ConsumerRecord) -> dict[str, Any] | None:
    """The record's structured CloudEvent; None for anything else (other tests' raw rows share the topics)."""
    try:
        event = json.loads(record.value)
    except (TypeError, ValueError):
        return None
    return event if isinstance(event, dict) else None


async def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset now: `since` for the reads of what a test is about to cause."""
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def wait_for_records(bootstrap: str, topic: str, match: Callable[[ConsumerRecord], bool], *,
                           count: int = 1, timeout: float = 20.0, settle: float = 0.0,
                           since: dict[int, int] | None = None) -> list[ConsumerRecord]:
    """Poll the topic (from `since`, see read_topic) until `count` matching records exist; after `settle` s,
    return all matches."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in await read_topic(bootstrap, topic, since) if match(r)]
        if len(found) >= count:
            if settle:
                await asyncio.sleep(settle)
                found = [r for r in await read_topic(bootstrap, topic, since) if match(r)]
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} of {count} expected records on {topic} after {timeout}s")
        await asyncio.sleep(0.2)


async def wait_for_events(bootstrap: str, topic: str, match: Callable[[dict[str, Any]], bool], **kw
                          ) -> list[dict[str, Any]]:
    def matches(record: ConsumerRecord) -> bool:
        event = event_of(record)
        return event is not None and match(event)
    return [event_of(r) for r in await wait_for_records(bootstrap, topic, matches, **kw)]
