"""The faust app: reports repartitioned by content id into a windowed table, in batches; appeals as they come.

Built per process by `build_stream_app` (faust binds agents to one app object);
the app id is the service's consumer group, and its internal topics (the
repartition topic and the table's changelog) are named after it.
"""
from __future__ import annotations

import asyncio
import weakref

import faust
from faust.streams import _current_event as current_event  # read by Table.partition_for_key

from warden.runtime.settings import Settings

from moderation.config import ModerationConfig
from moderation.engine import Engine, decode

REPORTS, APPEALS = "moderation.reports.submitted", "moderation.appeals.submitted"
PARTITIONS = 4


def build_stream_app(settings: Settings, cfg: ModerationConfig, engine: Engine) -> faust.App:
    app_id = settings.group_id("moderation")
    (cfg.datadir / app_id).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id, broker=f"kafka://{settings.kafka_bootstrap_servers.replace(',', ';kafka://')}",
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

    @app.agent(reports, name=f"{app_id}.score-reports")
    async def score_reports(stream):
        async def content_key(value: bytes) -> str:
            # Runs on the source topic, before repartitioning: dead letters keep their original coordinates.
            item = decode(stream.current_event.message)
            if item.rejection is not None:
                await engine.dead_letter(item)
                return ""
            return item.payload.content.id

        grouped = stream.group_by(content_key, name="content", topic=by_content)
        # take_events acks a batch's events only when the loop asks for the next batch, i.e. after the commit.
        async for batch in grouped.take_events(cfg.batch_size, within=cfg.batch_wait_s):
            events = [event for event in batch if event.key]  # without a key: dead-lettered above
            if not events:
                continue
            items = [decode(event.message, REPORTS) for event in events]
            try:
                updated = await engine.score_batch(items, lambda content_id: dict(windows[content_id]))
            except BaseException:
                # Not committed (stopping during a database outage, or cancelled): take_events would still ack
                # these events as the generator closes; one more reference keeps their offsets uncommitted.
                for event in batch:
                    event.message.incref()
                raise
            last = {item.payload.content.id: event for event, item in zip(events, items)}
            for content_id, reports in updated.items():
                # A table write sends its changelog to the partition of the task's current event, which
                # take_events does not set in the agent's task: set it (only the task-local variable; the
                # stream's own `current_event` belongs to take_events' background buffer) to the item's event.
                token = current_event.set(weakref.ref(last[content_id]))
                try:
                    windows[content_id] = reports
                finally:
                    current_event.reset(token)

    @app.agent(appeals, name=f"{app_id}.receive-appeals")
    async def receive_appeals(stream):
        async for event in stream.events():
            item = decode(event.message)
            if item.rejection is not None:
                await engine.dead_letter(item)
            else:
                await engine.appeal(item)

    app.windows = windows
    return app


def is_ready(app: faust.App) -> bool:
    """Partitions assigned and the table recovered."""
    try:
        return app.tables.recovery.completed.is_set() and not app.rebalancing
    except AttributeError:
        return False
