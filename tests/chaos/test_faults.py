"""Faults under load: kill -9 of every service, PostgreSQL stopped 15 s, the broker unreachable 30 s.

After each: every request has exactly one final status, every approved case one
distinct package (a redelivered event is allowed, a second package is not),
every report counted once, no subscriber event lost.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest

from tests.chaos.harness import Ledger, Load, Reviewers, outbox_backlog, settle, trace_lost_reports

pytestmark = pytest.mark.slow

KILLS_PER_SERVICE = 3
RUN_SECONDS = 60


async def seeded_load(stack, ledger: Ledger, suspects: int = 12) -> Load:
    """Suspects with an account and sessions, in the store before any request names them."""
    people = [{"account_id": f"chaos-suspect-{uuid.uuid4().hex[:8]}"} for _ in range(suspects)]
    load = Load(stack.bootstrap, stack.authority, people, ledger)
    await load.start()
    for person in people:
        await load.account(person["account_id"], None, None)
        for _ in range(3):
            await load.session(person["account_id"])
    await stack.all_ready()
    await settle(stack.bootstrap, stack.database_url, ledger, timeout=60)
    return load


async def run_scenario(stack, name: str, ledger: Ledger, load: Load, fault) -> dict:
    stop, reviewers_stop = asyncio.Event(), asyncio.Event()
    reviewers = Reviewers(stack.services["legal-review"], ledger)
    started = time.monotonic()
    generator = asyncio.create_task(load.run(stop))
    reviewing = asyncio.create_task(reviewers.run(reviewers_stop))
    try:
        figures = await fault(load, reviewers)
    finally:
        stop.set()
        await generator
        await load.stop()
    try:
        await stack.all_ready(timeout=180)
        # The reviewers go on until the queue is clear: cases received last still need humans.
        books, problems = await settle(stack.bootstrap, stack.database_url, ledger, timeout=180)
    finally:
        reviewers_stop.set()
        await reviewing
    figures["review_api_errors"] = {str(k): n for k, n in reviewers.failures.items()}  # statuses and error names
    backlog = await outbox_backlog(stack.database_url, list(stack.services))
    result = dict(ledger.merge_counts(), **figures, seconds=round(time.monotonic() - started, 1),
                  lost=len(problems["lost"]), duplicated=len(problems["duplicated"]),
                  redelivered=books.redelivered, outbox_after=backlog,
                  final_statuses=_final_counts(books, ledger))
    lost_reports = [key[1] for kind, key in problems["lost"] if kind == "report"]
    if lost_reports:
        result["lost_reports_trace"] = await trace_lost_reports(stack.bootstrap, stack.group_prefix, lost_reports)
    stack.summary["scenarios"][name] = result
    assert problems == {"lost": [], "duplicated": []}, problems
    assert sum(backlog.values()) == 0, backlog
    assert not [s for s in reviewers.failures if isinstance(s, int) and s >= 500 and s != 503], reviewers.failures
    return result


def _final_counts(books, ledger) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request_id in ledger.requests:
        for status, _ in books.final_status.get(request_id, []):
            counts[status] = counts.get(status, 0) + 1
    return counts


async def test_kill_minus_nine_every_service_at_random_instants(stack):
    ledger = Ledger()
    load = await seeded_load(stack, ledger)
    rng = random.Random()

    async def killer(service) -> list[float]:
        instants = []
        for _ in range(KILLS_PER_SERVICE):
            await asyncio.sleep(rng.uniform(4, RUN_SECONDS / KILLS_PER_SERVICE - 4))
            await service.wait_ready(120)  # kill a working service, not one still starting
            await asyncio.sleep(rng.uniform(0, 2))
            service.kill9()
            instants.append(round(time.monotonic(), 1))
            service.start()
        return instants

    async def fault(load, reviewers) -> dict:
        started = time.monotonic()
        await asyncio.gather(*(killer(s) for s in stack.services.values()))
        await asyncio.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))
        return {"kills": sum(s.kills for s in stack.services.values()),
                "kills_by_service": {n: s.kills for n, s in stack.services.items()}}

    result = await run_scenario(stack, "kill_9", ledger, load, fault)
    assert result["kills"] == KILLS_PER_SERVICE * len(stack.services)


async def test_postgres_stopped_fifteen_seconds_mid_stream(stack):
    ledger = Ledger()
    load = await seeded_load(stack, ledger)
    lives = {name: s.starts for name, s in stack.services.items()}

    async def fault(load, reviewers) -> dict:
        await asyncio.sleep(8)
        await asyncio.to_thread(stack.postgres.pause)
        paused_at = time.monotonic()
        not_ready = set()
        try:
            while time.monotonic() - paused_at < 15:
                for name, service in stack.services.items():
                    if await asyncio.to_thread(service.readyz) == 503:
                        not_ready.add(name)
                    assert service.alive(), f"{name} died while the database was down"
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(stack.postgres.resume)
        outage = round(time.monotonic() - paused_at, 1)
        await stack.all_ready(timeout=60)
        await asyncio.sleep(10)
        return {"postgres_outages": 1, "postgres_outage_seconds": outage,
                "reported_not_ready": sorted(not_ready)}

    result = await run_scenario(stack, "postgres_outage", ledger, load, fault)
    assert result["reported_not_ready"] == sorted(stack.services), "a service stayed ready without its database"
    assert {name: s.starts for name, s in stack.services.items()} == lives, "a service had to be restarted"


async def test_broker_unreachable_thirty_seconds(stack):
    ledger = Ledger()
    load = await seeded_load(stack, ledger)
    lives = {name: s.starts for name, s in stack.services.items()}

    async def fault(load, reviewers) -> dict:
        await asyncio.sleep(8)
        # Speech cases wait for humans; decided during the outage, their events can only wait in the outbox.
        reviewers.paused.set()
        waiting = [await load.request("speech") for _ in range(3)]
        await _until_pending(stack, ledger, waiting)
        load.paused.set()
        await asyncio.sleep(1)
        stack.kafka.proxy.cut()
        cut_at = time.monotonic()
        held = 0
        try:
            import httpx
            async with httpx.AsyncClient(timeout=5) as http:
                await reviewers.clear_queue(http)
            while time.monotonic() - cut_at < 30:
                for name, service in stack.services.items():
                    assert service.alive(), f"{name} died while the broker was unreachable"
                    assert await asyncio.to_thread(service.healthz) == 200, f"{name} stopped answering"
                held = max(held, (await outbox_backlog(stack.database_url, ["legal-review"]))["legal-review"])
                await asyncio.sleep(1)
        finally:
            stack.kafka.proxy.restore()
        outage = round(time.monotonic() - cut_at, 1)
        load.paused.clear()
        reviewers.paused.clear()
        await asyncio.sleep(10)
        return {"broker_outages": 1, "broker_outage_seconds": outage, "outbox_held_during_outage": held,
                "connections_refused_while_cut": stack.kafka.proxy.refused}

    result = await run_scenario(stack, "broker_outage", ledger, load, fault)
    assert result["outbox_held_during_outage"] > 0, "no event waited in an outbox during the outage"
    assert {name: s.starts for name, s in stack.services.items()} == lives, "a service had to be restarted"


async def _until_pending(stack, ledger: Ledger, request_ids: list[str], timeout: float = 60) -> None:
    from tests.chaos.harness import db_fetch

    deadline = time.monotonic() + timeout
    while True:
        rows = await db_fetch(stack.database_url, "SELECT count(*) AS n FROM legal_review.cases"
                              " WHERE request_id = ANY($1) AND status = 'pending_review'", request_ids)
        if rows[0]["n"] == len(request_ids):
            return
        assert time.monotonic() < deadline, "speech cases never reached the review queue"
        await asyncio.sleep(0.3)
