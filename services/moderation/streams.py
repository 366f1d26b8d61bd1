"""The faust app: reports by content id into a windowed table, in batches; appeals in batches too.

`moderation.reports.submitted` is keyed by content id (the contract), so a report
normally arrives in its content's home partition and is scored from there. One
that arrives elsewhere (a publisher with its own partitioner) is repartitioned
through `<app id>-reports-by-content`, whose agent scores it like the others: the
table's partitions follow the content id either way.

Every batch first goes through continuity.py: faust can skip events across a
rebalance, so what lies between moderation's own recorded place in a partition
and the batch is read back from the broker and handled first, and a partition
left behind with nothing coming is caught up by `catch_up` (a faust timer).

Built per process by `build_stream_app` (faust binds agents to one app object);
the app id is the service's consumer group, and its internal topics (the
repartition topic and the table's changelog) are named after it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping

import faust
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord
from faust.streams import _current_event as current_event  # read by Table.partition_for_key

from warden.contract.topics import TOPICS
from warden.runtime import kafka
from warden.runtime.consumer import Decoded, decode_record
from warden.runtime.settings import Settings

from moderation.config import ModerationConfig
from moderation.continuity import GapReader, Partition, missing_ranges, next_offsets
from moderation.engine import Engine

log = logging.getLogger(__name__)
REPORTS, APPEALS = "moderation.reports.submitted", "moderation.appeals.submitted"
PARTITIONS = TOPICS[REPORTS].partitions


def home_partition(content_id: str) -> int:
    """The partition the default Kafka partitioner gives a content id (Java clients and aiokafka alike)."""
    return (murmur2(content_id.encode()) & 0x7FFFFFFF) % PARTITIONS


def as_record(message) -> ConsumerRecord:
    """A faust message as the shared decoder, the DLQ builder and continuity.py expect it."""
    headers = message.headers or []
    if isinstance(headers, Mapping):
        headers = list(headers.items())
    key, value = message.key, message.value
    return ConsumerRecord(message.topic, message.partition, message.offset, message.timestamp or 0, 0,
                          key.encode() if isinstance(key, str) else key,
                          value.encode() if isinstance(value, str) else value,
                          None, 0, 0, tuple(headers))


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The Kafka security settings every client gets (warden/runtime/kafka.py), as faust takes them."""
    options = kafka.connection(settings.kafka_bootstrap_servers, settings.kafka_security)
    if options["security_protocol"].startswith("SASL_"):
        return faust.SASLCredentials(username=options["sasl_plain_username"], password=options["sasl_plain_password"],
                                     mechanism=options["sasl_mechanism"], ssl_context=options.get("ssl_context"))
    if "ssl_context" in options:
        return faust.SSLCredentials(options["ssl_context"])
    return None


def build_stream_app(settings: Settings, cfg: ModerationConfig, engine: Engine, gaps: GapReader) -> faust.App:
    app_id = settings.group_id("moderation")
    (cfg.datadir / app_id).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id, broker=f"kafka://{settings.kafka_bootstrap_servers.replace(',', ';kafka://')}",
        broker_credentials=broker_credentials(settings),
        store="memory://", datadir=str(cfg.datadir / app_id), web_enabled=False, loop=asyncio.get_running_loop(),
        topic_partitions=PARTITIONS, topic_replication_factor=cfg.replication_factor,
        consumer_auto_offset_reset="earliest", producer_acks=-1,
        # Short session and rebalance timeouts: the group forms in about a second (Tansu waits for them).
        broker_session_timeout=cfg.session_timeout_s, broker_rebalance_timeout=cfg.session_timeout_s,
        broker_heartbeat_interval=max(cfg.session_timeout_s / 4, 0.25),
    )
    reports = app.topic(REPORTS, key_serializer="raw", value_serializer="raw")
    appeals = app.topic(APPEALS, key_serializer="raw", value_serializer="raw")
    by_content = app.topic(f"{app_id}-reports-by-content", key_serializer="raw", value_serializer="raw",
                           partitions=PARTITIONS, internal=True)
    # content id -> {reporter id: [contribution, reported_at]} inside the sliding window
    windows = app.Table("report-windows", default=dict, partitions=PARTITIONS)

    async def repartition(items: list[Decoded]) -> None:
        """To the content's home partition; returns once the broker has them (then they may be acked)."""
        sent = [await by_content.send(key=item.payload.content.id.encode(), value=item.record.value,
                                      headers=list(item.record.headers or ())) for item in items]
        await asyncio.gather(*sent)

    def decoded(records: list[ConsumerRecord]) -> list[tuple[ConsumerRecord, Decoded]]:
        """Reports as the contract topic's events (the repartition topic carries the same bytes)."""
        return [(record, decode_record(dataclasses.replace(record, topic=REPORTS))) for record in records]

    async def dead_letter_rejected(items: list[tuple[ConsumerRecord, Decoded]]) -> list[tuple[ConsumerRecord, Decoded]]:
        for _, item in items:
            if item.rejection is not None:
                await engine.dead_letter(item)
        return [(record, item) for record, item in items if item.rejection is None]

    async def score_reports(events: list[faust.EventT]) -> None:
        records = await complete(engine, gaps, [as_record(event.message) for event in events])
        valid = await dead_letter_rejected(decoded(records))
        misplaced = {id(item) for record, item in valid
                     if record.topic == REPORTS and record.partition != home_partition(item.payload.content.id)}
        await repartition([item for _, item in valid if id(item) in misplaced])
        scored = [(record, item) for record, item in valid if id(item) not in misplaced]
        updated = await engine.score_batch([item for _, item in scored],
                                           lambda content_id: dict(windows[content_id]), next_offsets(records))
        # A table write sends its changelog to the partition of the task's current event, which
        # take_events does not set in the agent's task: set it (only the task-local variable; the
        # stream's own `current_event` belongs to take_events' background buffer) to an event of
        # the partition the item's reports came from (its home partition).
        event_of = {(e.message.topic, e.message.partition): e for e in events}
        partition_of = {item.payload.content.id: (record.topic, record.partition) for record, item in scored}
        for content_id, window in updated.items():
            token = current_event.set(weakref.ref(event_of[partition_of[content_id]]))
            try:
                windows[content_id] = window
            finally:
                current_event.reset(token)

    async def handle_appeals(records: list[ConsumerRecord]) -> None:
        for record in records:
            item = decode_record(record)
            if item.rejection is not None:
                await engine.dead_letter(item)
            else:
                await engine.appeal(item)

    async def receive_appeals(events: list[faust.EventT]) -> None:
        records = await complete(engine, gaps, [as_record(event.message) for event in events])
        await handle_appeals(records)
        await engine.record_progress(next_offsets(records))

    @app.agent(reports, name=f"{app_id}.score-reports")
    async def score_reports_agent(stream):
        await in_batches(stream, cfg, score_reports)

    @app.agent(by_content, name=f"{app_id}.score-repartitioned-reports")
    async def score_repartitioned_agent(stream):
        await in_batches(stream, cfg, score_reports)

    @app.agent(appeals, name=f"{app_id}.receive-appeals")
    async def receive_appeals_agent(stream):
        await in_batches(stream, cfg, receive_appeals)

    async def catch_up_reports(records: list[ConsumerRecord]) -> None:
        # Outside an agent there is no event for the table write: through the repartition topic.
        await repartition([item for _, item in await dead_letter_rejected(decoded(records))])

    catch_up_by_topic = {REPORTS: catch_up_reports, by_content.get_topic_name(): catch_up_reports,
                         APPEALS: handle_appeals}
    behind: dict[Partition, int] = {}

    @app.timer(cfg.catch_up_interval_s, name=f"{app_id}.catch-up")
    async def catch_up() -> None:
        """A partition whose recorded place stays behind its end for a whole interval while nothing
        moves it: faust is not delivering what is there (skipped at the tail). Read it back, hand it over."""
        if not engine.database_ok:
            return
        try:
            assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()
                        if tp.topic in catch_up_by_topic]
            ends = await gaps.end_offsets(assigned)
            places = await engine.expected_offsets(assigned)
            for partition in assigned:
                place, end = places.get(partition), ends.get(partition, 0)
                if place is None or end <= place:
                    behind.pop(partition, None)
                elif behind.get(partition) != place:
                    behind[partition] = place  # give faust one interval to deliver it
                else:
                    end = min(end, place + 10 * cfg.batch_size)  # a long backlog: a chunk per tick
                    await catch_up_by_topic[partition[0]](await gaps.read(partition, [(place, end - 1)]))
                    await engine.record_progress({partition: end})
                    behind.pop(partition, None)
        except Exception as exc:  # the next tick tries again; the agents go on meanwhile
            log.warning("catching up a stalled partition failed", extra={"error_type": type(exc).__name__})

    app.windows = windows
    return app


async def in_batches(stream, cfg: ModerationConfig, handle: Callable[[list], Awaitable[None]]) -> None:
    # take_events acks a batch's events only when the loop asks for the next batch, i.e. after `handle`.
    async for batch in stream.take_events(cfg.batch_size, within=cfg.batch_wait_s):
        try:
            await handle(batch)
        except BaseException:
            # Not handled (stopping during a database outage, or cancelled): take_events would still ack
            # these events as the generator closes; one more reference keeps their offsets uncommitted.
            for event in batch:
                event.message.incref()
            raise


async def complete(engine: Engine, gaps: GapReader, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
    """The batch with what faust skipped before it read back from the broker, in offset order per partition."""
    by_partition: dict[Partition, dict[int, ConsumerRecord]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), {})[record.offset] = record
    expected = await engine.expected_offsets(list(by_partition))
    completed: list[ConsumerRecord] = []
    for partition, found in by_partition.items():
        ranges = missing_ranges(expected.get(partition), found)
        if ranges:
            for record in await gaps.read(partition, ranges):
                found.setdefault(record.offset, record)
        completed += [found[offset] for offset in sorted(found)]
    return completed


def is_ready(app: faust.App) -> bool:
    """Partitions assigned and the table recovered."""
    try:
        return app.tables.recovery.completed.is_set() and not app.rebalancing
    except AttributeError:
        return False
