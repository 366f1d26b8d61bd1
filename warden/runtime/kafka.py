"""Kafka clients configured the one way Warden uses them, and topic creation.

Every aiokafka client in Warden (services, CLI, bench, tests) is built here, so that each
gets the security settings of `connection()`; tests/unit/runtime/test_kafka_security.py
fails on an aiokafka client built anywhere else.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from warden.contract.topics import DLQ_PARTITIONS, DLQ_RETENTION_MS, TOPICS, all_topic_names
from warden.runtime.settings import FETCH_MAX_WAIT_MS, ConfigurationError, KafkaSecurity, read_kafka_security

log = logging.getLogger(__name__)


def connection(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The options that say where the brokers are and how to talk to them safely.

    `security` defaults to the environment's (KAFKA_SECURITY_PROTOCOL & co., settings.py): one
    process talks to one cluster as one principal, whichever client it builds.
    """
    security = security if security is not None else read_kafka_security()
    options: dict[str, Any] = {"bootstrap_servers": bootstrap, "security_protocol": security.security_protocol}
    if security.uses_sasl:
        options.update(sasl_mechanism=security.sasl_mechanism, sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password.get_secret_value())
    if security.uses_ssl:
        options["ssl_context"] = _ssl_context(security)
    return options


def _ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    try:
        return create_ssl_context(
            cafile=security.ssl_cafile, certfile=security.ssl_certfile, keyfile=security.ssl_keyfile,
            password=security.ssl_password.get_secret_value() if security.ssl_password else None)
    except (ssl.SSLError, OSError) as exc:  # a bad PEM, a key that does not match, a wrong key password
        raise ConfigurationError(
            "Kafka security settings: cannot load the TLS files (KAFKA_SSL_CAFILE, KAFKA_SSL_CERTFILE, "
            f"KAFKA_SSL_KEYFILE, KAFKA_SSL_PASSWORD): {type(exc).__name__}: {exc.strerror or exc}") from None


def admin(bootstrap: str, security: KafkaSecurity | None = None, **overrides) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection(bootstrap, security), **overrides)


def producer(bootstrap: str, security: KafkaSecurity | None = None, **overrides) -> AIOKafkaProducer:
    # Idempotence is off: Tansu lacks InitProducerId, and the outbox + inbox give
    # effectively-once without it (DESIGN.md). max_batch_size 1 MiB (aiokafka's default is
    # 16 KiB): a relay pass sends all its rows at once, and a partition batch that fills up
    # made the rest wait for it, so one pass of disclosure packages (a few KiB each, all to
    # the authority's partition) took ~5 produce requests instead of one (docs/performance.md).
    # linger_ms 0: the relay hands the producer a whole pass before it yields to the event loop, so
    # a pass leaves as one produce request anyway; lingering would only hold every hop back.
    options = dict(acks="all", enable_idempotence=False, linger_ms=0, max_batch_size=1024 * 1024,
                   max_request_size=2 * 1024 * 1024)
    options.update(overrides)
    return AIOKafkaProducer(**connection(bootstrap, security), **options)


def consumer(bootstrap: str, group_id: str | None, security: KafkaSecurity | None = None,
             **overrides) -> AIOKafkaConsumer:
    options = dict(group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
                   max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    options.update(overrides)
    return AIOKafkaConsumer(**connection(bootstrap, security), **options)


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
    if base is None:  # a DLQ
        return {"retention.ms": str(DLQ_RETENTION_MS)}
    configs = {"retention.ms": str(base.retention_ms)}
    if base.compacted:
        configs["cleanup.policy"] = "compact"
    return configs


def partitions_of(name: str) -> int:
    base = TOPICS.get(name)
    return base.partitions if base else DLQ_PARTITIONS


async def create_topics(bootstrap: str, replication_factor: int = 1,
                        security: KafkaSecurity | None = None) -> list[str]:
    """Create every contract topic and DLQ that is missing; returns the ones created."""
    client = admin(bootstrap, security)
    await start_with_retry(client, "admin")
    try:
        existing = set(await client.list_topics())
        missing = [n for n in all_topic_names() if n not in existing]
        if missing:
            try:
                await client.create_topics([
                    NewTopic(n, partitions_of(n), replication_factor, topic_configs=topic_configs(n))
                    for n in missing])
            except KafkaError as exc:  # a concurrent creator won the race
                log.info("topic creation raced", extra={"error_type": type(exc).__name__})
        return missing
    finally:
        await client.close()
