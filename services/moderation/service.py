"""Moderation, as the runtime runs it: what it consumes, the handler for each, its API and jobs.

Consumes  platform.content              -> content.record_content  (the platform's facts, checked on arrival;
                                                                     emits search.delistings, moderation.decisions)
          moderation.reports.submitted  -> reports.score_reports   (batch handler; emits search.delistings,
                                                                     moderation.decisions)
          moderation.appeals.submitted  -> handlers.receive_appeal  (emits moderation.notices)
HTTP      /moderation/...               -> the moderators' API (api.py; decisions emit moderation.decisions,
                                           search.delistings, moderation.violations, moderation.notices)
          /console/...                  -> the moderators' web console (console/routes.py)
Jobs      watch_queue                   -> the queue-depth and suspended-reporter gauges
          hand_over_unknown             -> reports of content never described, queued after a wait
          recheck_public_content        -> public content checked again when the banks or the model change
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from warden.console import require_console_secret
from warden.contract.events import (ContentDelisted, ContentRelisted, ModerationDecision, ModerationNotice,
                                    ViolationConfirmed, ViolationWithdrawn)
from warden.runtime.database import MigrationSet
from warden.runtime.jobs import every
from warden.runtime.service import Service, ServiceContext, Subscription

from moderation import metrics
from moderation.api import add_routes
from moderation.config import ModerationConfig, require_moderation_tokens
from moderation.console.routes import add_console
from moderation.content import hand_over_unknown, recheck_public_content, record_content
from moderation.detection import Checks
from moderation.handlers import receive_appeal
from moderation.reports import score_reports
from moderation.transactions import Transactions

CONTENT, REPORTS, APPEALS = "platform.content", "moderation.reports.submitted", "moderation.appeals.submitted"
MIGRATIONS = [MigrationSet("moderation", Path(__file__).parent / "migrations")]


async def watch_queue(runtime: ServiceContext) -> None:
    """The queue-depth and suspended-reporter gauges, every two seconds."""
    async def step() -> None:
        async with runtime.pool.acquire(timeout=2) as conn:
            metrics.QUEUE_DEPTH.set(await conn.fetchval("SELECT count(*) FROM queue", timeout=2))
            metrics.SUSPENDED_REPORTERS.set(await conn.fetchval(
                "SELECT count(*) FROM reporters WHERE suspended_until > now()", timeout=2))

    await every(runtime.stopping, 2, step, "queue_gauges")


def build_service(cfg: ModerationConfig | None = None, checks: Checks | None = None) -> Service:
    """The moderation service with these settings (default: the environment's) and automated checks (default:
    the configured text banks, media banks and classifier, loaded here once per process)."""
    cfg = cfg or ModerationConfig()
    checks = checks or Checks.load(cfg)

    async def hand_over_unknown_content(runtime: ServiceContext) -> None:
        await hand_over_unknown(runtime, cfg)

    async def recheck_content(runtime: ServiceContext) -> None:
        await recheck_public_content(runtime, checks, cfg)

    def routes(app: FastAPI, runtime: ServiceContext) -> None:
        transactions = Transactions(runtime)
        add_routes(app, transactions, cfg)
        add_console(app, transactions, cfg, checks)

    return Service(
        name="moderation",
        schema="moderation",
        subscriptions=[
            Subscription(CONTENT, partial(record_content, checks=checks, cfg=cfg)),
            Subscription(REPORTS, handle_batch=partial(score_reports, cfg=cfg), deduplicates=True, structs=True),
            Subscription(APPEALS, receive_appeal),
        ],
        migrations=MIGRATIONS,
        emits=(ContentDelisted, ContentRelisted, ModerationDecision, ViolationConfirmed, ViolationWithdrawn,
               ModerationNotice),
        routes=routes,
        background=[watch_queue, hand_over_unknown_content, recheck_content],
        startup_checks=[partial(require_moderation_tokens, cfg), require_console_secret],
        # Reports are scored set-based: a backlog goes through in fewer, larger transactions (fewer commits
        # and round trips per report; docs/performance.md).
        batch_max_records=1000,
        # While one batch waits for Postgres the next ones' Python runs. Any commit order of two batches is
        # right: reports are scored under their items' locks (as with workers on other partitions), and the
        # platform's facts replace what is held only when newer.
        batches_in_flight=5,
    )


SERVICE = build_service()
