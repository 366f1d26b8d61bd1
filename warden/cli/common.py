"""What several commands share: finding the stack, publishing and reading events."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import click
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka

STACK_DIR = Path(os.environ.get("WARDEN_HOME", ".warden"))
STACK_FILE = STACK_DIR / "stack.json"
# The development keys `warden up` creates (warden/keys.py); operators' commands sign with them by default.
KEYS_DIR = STACK_DIR / "keys"


def read_stack() -> dict[str, Any] | None:
    try:
        return json.loads(STACK_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return None


def bootstrap_servers(explicit: str | None = None) -> str:
    """--bootstrap, then KAFKA_BOOTSTRAP_SERVERS, then the running `warden up` stack."""
    if explicit:
        return explicit
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    stack = read_stack()
    if stack:
        return stack["kafka_bootstrap_servers"]
    raise click.ClickException(
        "no Kafka to talk to: start the stack with `make run` (or `warden up`), "
        "or set KAFKA_BOOTSTRAP_SERVERS, or pass --bootstrap HOST:PORT")


bootstrap_option = click.option("--bootstrap", "bootstrap", default=None, metavar="HOST:PORT",
                                help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or .warden/stack.json)")


def run(coro):
    try:
        return asyncio.run(coro)
    except KafkaConnectionError as exc:
        raise click.ClickException(f"cannot reach Kafka ({exc}); is the stack running? (`make run`)") from None


async def publish(bootstrap: str, topic_name: str, event_type: str, data: dict[str, Any],
                  source: str) -> dict[str, Any]:
    event = new_event(event_type, source, data)
    value, headers = encode_structured(event)
    key = TOPICS[topic_name].key_of(data)
    producer = kafka.producer(bootstrap)
    await kafka.start_with_retry(producer, "cli", attempts=10)
    try:
        await producer.send_and_wait(topic_name, value, key=key.encode() if key else None, headers=headers)
    finally:
        await producer.stop()
    return event


async def read_all(bootstrap: str, topic_name: str, idle_ms: int = 500) -> list[dict[str, Any]]:
    """Every event on a topic, from the beginning to its current end (no consumer group)."""
    consumer = kafka.consumer(bootstrap, None)
    await kafka.start_with_retry(consumer, "cli", attempts=10)
    try:
        partitions = [TopicPartition(topic_name, p) for p in (consumer.partitions_for_topic(topic_name) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events: list[dict[str, Any]] = []
        while await _behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=idle_ms)
            for records in batch.values():
                for record in records:
                    try:
                        events.append(json.loads(record.value))
                    except (TypeError, ValueError):
                        continue
        return events
    finally:
        await consumer.stop()


async def _behind(consumer, ends: dict) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
