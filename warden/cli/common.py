"""What several commands share: finding the stack, publishing and reading events."""
from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from aiokafka import TopicPartition
from aiokafka.errors import (GroupAuthorizationFailedError, KafkaConnectionError, KafkaError,
                             TopicAuthorizationFailedError)
from aiokafka.structs import ConsumerRecord

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


class Since(click.ParamType):
    """A moment: an RFC 3339 / ISO 8601 time (UTC when it names no zone) or an age before now (30s, 15m, 2h, 7d)."""

    name = "time"
    _UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        if text[:-1].isdigit() and text[-1:] in self._UNITS:
            return datetime.now(timezone.utc) - timedelta(seconds=int(text[:-1]) * self._UNITS[text[-1]])
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is neither a time (2026-12-01T08:00Z) nor an age (30m, 2h, 7d)", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


SINCE = Since()


def run(coro):
    """Run a command's Kafka work; what goes wrong with Kafka becomes one line that says what to do."""
    try:
        return asyncio.run(coro)
    except KafkaConnectionError as exc:
        raise click.ClickException(
            f"cannot reach Kafka ({exc}); is the stack running (`make run`)? Elsewhere, check --bootstrap or "
            "KAFKA_BOOTSTRAP_SERVERS and the KAFKA_SECURITY_PROTOCOL settings (docs/deployment.md)") from None
    except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as exc:
        raise click.ClickException(
            f"Kafka refused this principal ({type(exc).__name__}): run the command with the credentials of a "
            "principal allowed on the topic (KAFKA_SASL_USERNAME & co., docs/deployment.md)") from None
    except KafkaError as exc:
        raise click.ClickException(f"Kafka answered with an error ({type(exc).__name__}: {exc}); retry, and if it "
                                   "persists check the cluster's health") from None


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
    events: list[dict[str, Any]] = []
    for record in await read_records(bootstrap, topic_name, idle_ms=idle_ms, missing_ok=True):
        try:
            events.append(json.loads(record.value))
        except (TypeError, ValueError):
            continue
    return events


async def read_records(bootstrap: str, topic_name: str, *, keep=None, idle_ms: int = 500,
                       missing_ok: bool = False) -> list[ConsumerRecord]:
    """Every record on a topic (those `keep` accepts), from the beginning to its current end, in
    (partition, offset) order, with no consumer group. A topic the broker lacks: [] if
    `missing_ok`, else an error that says how to create it."""
    consumer = kafka.consumer(bootstrap, None)
    try:
        await kafka.start_with_retry(consumer, "cli", attempts=10)
        partitions = await topic_partitions(consumer, topic_name, missing_ok=missing_ok)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        for batch in await fetch_to_end(consumer, partitions, idle_ms):
            records.extend(r for r in batch if keep is None or keep(r))
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def fetch_to_end(consumer, partitions: list[TopicPartition], idle_ms: int = 500) -> list[list[ConsumerRecord]]:
    """The assigned partitions' records from their positions to the topic's end as of now, in fetched batches.

    One fetch more once the end offsets are reached: the embedded broker (Tansu) answers end
    offsets that can lag a record already written; against Kafka that fetch only returns what
    arrived meanwhile."""
    ends = await consumer.end_offsets(partitions)
    batches: list[list[ConsumerRecord]] = []
    while await _behind(consumer, ends):
        batches += (await consumer.getmany(timeout_ms=idle_ms)).values()
    batches += (await consumer.getmany(timeout_ms=min(idle_ms, 200))).values()
    return batches


async def topic_partitions(consumer, topic_name: str, *, missing_ok: bool = False) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic_name)
    if partitions is None and topic_name in await consumer.topics():  # metadata fetched anew by topics()
        partitions = consumer.partitions_for_topic(topic_name)
    if not partitions and not missing_ok:
        raise click.ClickException(
            f"topic {topic_name} does not exist on this Kafka cluster: create the contract's topics with "
            "`warden topics create` (or check --bootstrap / KAFKA_BOOTSTRAP_SERVERS)")
    return [TopicPartition(topic_name, p) for p in sorted(partitions or ())]


async def _behind(consumer, ends: dict) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
