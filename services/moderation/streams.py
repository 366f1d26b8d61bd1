"""The faust app: reports repartitioned by content id into a windowed table, appeals as they come.

Built per process by `build_stream_app` (faust binds agents to one app object);
the app id is the service's consumer group, and its internal topics (the
repartition topic and the table's changelog) are named after it.
"""
from __future__ import annotations

import asyncio

import faust

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

        async for event in stream.group_by(content_key, name="content", topic=by_content).events():
            if not event.key:
                continue  # dead-lettered above
            item = decode(event.message, REPORTS)
            content_id = item.payload.content.id
            windows[content_id] = await engine.score(item, dict(windows[content_id]))

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
