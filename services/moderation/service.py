"""Moderation, as the runner runs it: a faust app (reports by content id, appeals) inside `serve`.

The shared pieces are reused as they are: migrations, the asyncpg pool, the
transactional outbox and its relay, the dead-letter rules, metrics and the
/metrics /healthz /readyz server. Faust consumes; Postgres decides; the relay publishes.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from warden.runtime import kafka
from warden.runtime import metrics as shared
from warden.runtime.backoff import Backoff
from warden.runtime.database import RUNTIME_MIGRATIONS, MigrationSet, is_transient, open_database
from warden.runtime.http import build_app, build_server
from warden.runtime.outbox import OutboxRelay
from warden.runtime.runner import close_within
from warden.runtime.settings import Settings

from moderation import metrics
from moderation.api import add_routes
from moderation.banks import BankScorer, Scorer, load_banks
from moderation.config import ModerationConfig
from moderation.continuity import GapReader
from moderation.engine import Engine
from moderation.streams import build_stream_app, is_ready

log = logging.getLogger(__name__)
NAME = SCHEMA = "moderation"
MIGRATIONS = [RUNTIME_MIGRATIONS, MigrationSet("moderation", Path(__file__).parent / "migrations")]


async def serve(settings: Settings, stopping: asyncio.Event, cfg: ModerationConfig | None = None,
                scorer: Scorer | None = None) -> None:
    cfg = cfg or ModerationConfig()
    scorer = scorer or BankScorer(load_banks(cfg.banks_file))
    state: dict = {"db": False}
    stream_app = None
    relay = None

    def readiness() -> dict[str, bool]:
        return {"consumer_group_joined": stream_app is not None and is_ready(stream_app),
                "database": state["db"] and (engine is None or engine.database_ok),
                "kafka_producer": relay is not None and relay.healthy}

    engine = None
    http = build_app(NAME, readiness)
    server = build_server(http, settings.http_host, settings.http_port)
    http_task = asyncio.create_task(server.serve(), name="http")
    pool = await open_database(settings.database_url, SCHEMA, MIGRATIONS, settings.db_pool_size,
                               Backoff(settings.retry_initial_s, settings.retry_max_s), stopping)
    state["db"] = True
    producer = kafka.producer(settings.kafka_bootstrap_servers, settings.kafka_security)
    await kafka.start_with_retry(producer, "producer")
    relay = OutboxRelay(NAME, pool, producer, batch_size=settings.outbox_batch_size,
                        retry_initial_s=settings.retry_initial_s, retry_max_s=settings.retry_max_s)
    engine = Engine(pool, cfg, scorer, relay.wakeup, stopping, settings.retry_initial_s, settings.retry_max_s)
    add_routes(http, engine, cfg)
    from moderation.console.routes import add_console  # the moderators' web pages (/console)
    add_console(http, engine, cfg)
    gaps = GapReader(settings.kafka_bootstrap_servers, stopping, settings.retry_initial_s, settings.retry_max_s)
    stream_app = build_stream_app(settings, cfg, engine, gaps)
    tasks = [asyncio.create_task(_watch(pool, state, stopping, readiness), name="watch")]
    if settings.outbox_relay:
        tasks.append(asyncio.create_task(relay.run(stopping), name="outbox"))
    try:
        await stream_app.start()
        log.info("service started", extra={"group_id": settings.group_id(NAME)})
        waiter = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()
    finally:
        stopping.set()
        await close_within("faust app", stream_app.stop(), timeout=10)
        await close_within("gap reader", gaps.close())
        relay.wakeup.set()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await close_within("producer", producer.stop())
        await close_within("database pool", pool.close(), if_not_closed=pool.terminate)
        server.should_exit = True
        await asyncio.wait([http_task], timeout=5)
        log.info("service stopped")


async def _watch(pool, state: dict, stopping: asyncio.Event, readiness) -> None:
    """Database health, readiness and the queue/suspension gauges, every two seconds."""
    while not stopping.is_set():
        try:
            async with pool.acquire(timeout=2) as conn:
                depth = await conn.fetchval("SELECT count(*) FROM queue", timeout=2)
                suspended = await conn.fetchval(
                    "SELECT count(*) FROM reporters WHERE suspended_until > now()", timeout=2)
            metrics.QUEUE_DEPTH.set(depth)
            metrics.SUSPENDED_REPORTERS.set(suspended)
            state["db"] = True
        except Exception as exc:
            if not is_transient(exc):
                raise
            state["db"] = False
        shared.READY.labels(NAME).set(int(all(readiness().values())))
        try:
            await asyncio.wait_for(stopping.wait(), timeout=2)
        except asyncio.TimeoutError:
            pass
