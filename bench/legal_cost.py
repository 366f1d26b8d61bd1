"""What a legal request costs each service, without a broker: `python -m bench.legal_cost [--requests N]`.

The legal bench's signed court orders (bench/legal.py) go straight to intake's `BatchProcessor`, in
batches of `--batch` (what a consumer batch holds at 200 req/s); what intake's transactions put in its
outbox for legal review goes to legal review's processor the same way, and what legal review's put
there for disclosure goes to disclosure's. Each service has its schema in one database of an embedded
PostgreSQL of its own, the court registered and the bench's suspects and sessions fed through each
service's own subscriptions first. It prints, per request and per service, the worker's CPU and
Postgres's CPU (the server and its backends) over that service's batches only; then, as "<service>
views", the same for the events of its views (Subscription.read_every_s: the statuses, progress and
packages the three services emitted), in the batches a quarter of a second at 200 req/s holds (50
requests' events). Where `make bench`
says how long a request takes on a shared machine, this says whose work it is, with no broker, no
other process and no wait in it. Like the services, it freezes the startup heap and runs on uvloop;
`py-spy record -- python -m bench.legal_cost` shows where each service's part goes.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import uvloop
from aiokafka.structs import ConsumerRecord

from bench.legal import SUSPECTS, authority, registry_record, request_event, subscriber_records, suspect
from bench.moderation_cost import cpu_seconds, records
from bench.stack import created_database
from warden.embedded import EmbeddedPostgres
from warden.keys import development_environment, development_keys
from warden.runtime.batch import BatchProcessor
from warden.runtime.database import create_pool, migrate
from warden.runtime.runner import load_service, settle_heap

PIPELINE = (("intake", "legal.requests.received"), ("legal-review", "legal.requests.decided"),
            ("disclosure", "legal.disclosures.issued"))


def setup_records(auth: dict, registry_key: str, run_id: str) -> dict[str, list[ConsumerRecord]]:
    """The court's signed registry record, and the bench's suspects with their sessions."""
    now = datetime.now(timezone.utc)
    return {"legal.authorities": records("legal.authorities", [registry_record(auth, registry_key, now)]),
            "platform.subscribers": records("platform.subscribers", subscriber_records(run_id, now))}


async def emitted(pool: asyncpg.Pool) -> dict[str, list[tuple[bytes, bytes, list]]]:
    """The rows the service's transactions left in its outbox, by topic, as (key, value, headers) in the
    order the relay sends them; the outbox is emptied, as the relay would."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("DELETE FROM outbox RETURNING id, topic, key, value, header_names, header_values")
    by_topic: dict[str, list[tuple[bytes, bytes, list]]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        by_topic.setdefault(r["topic"], []).append((r["key"], r["value"], list(zip(r["header_names"],
                                                                                   r["header_values"]))))
    return by_topic


def view_batches(published: dict[str, list[tuple[bytes, bytes, list]]], topics: set[str], count: int,
                 requests_per_batch: int = 50) -> list[list[ConsumerRecord]]:
    """The views' topics' records in batches of `requests_per_batch` requests' worth, each topic's share in
    order (what a views consumer reading every 0.25 s takes at 200 req/s)."""
    parts = max(1, count // requests_per_batch)
    batches: list[list[ConsumerRecord]] = [[] for _ in range(parts)]
    for topic in sorted(topics & published.keys()):
        consumed = records(topic, published[topic])
        for i in range(parts):
            batches[i] += consumed[i * len(consumed) // parts:(i + 1) * len(consumed) // parts]
    return batches


async def timed(processor: BatchProcessor, pool: asyncpg.Pool, server_pid: int, batches: list[list[ConsumerRecord]],
                count: int) -> dict:
    """The worker's and Postgres's CPU per request over `batches`."""
    await pool.execute("CHECKPOINT")
    worker, server = time.process_time(), cpu_seconds(server_pid)
    for consumed in batches:
        await processor.process(consumed)
    worker, server = time.process_time() - worker, cpu_seconds(server_pid) - server
    return {"worker_cpu_us": round(worker * 1e6 / count, 1), "postgres_cpu_us": round(server * 1e6 / count, 1)}


async def measure(server_url: str, server_pid: int, count: int, batch: int, registry_key: str) -> dict:
    """Each service's CPU per request over its batches; `registry_key`: the operator key that signs the court's
    registry record (one the services' WARDEN_REGISTRY_PUBLIC_KEYS trust)."""
    run_id = uuid.uuid4().hex[:8]
    url = await created_database(server_url, f"legal_cost_{run_id}")
    auth = authority(run_id)
    setup = setup_records(auth, registry_key, run_id)
    processors, pools = {}, []
    try:
        for service_name, _ in PIPELINE:
            service = load_service(service_name)
            await migrate(url, service.schema, service.migration_sets)
            pool = await create_pool(url, service.schema, 4)
            pools.append(pool)
            processors[service_name] = (BatchProcessor(service, pool), pool)
            topics = {s.topic for s in service.subscriptions}
            for topic, consumed in setup.items():
                if topic in topics:
                    for start in range(0, len(consumed), 500):
                        await processors[service_name][0].process(consumed[start:start + 500])
            await emitted(pool)  # what the setup emitted is not the requests' cost
        incoming = records("legal.requests.submitted", [
            (key, value, headers) for _, key, value, headers in
            (request_event(auth, suspect(run_id, n % SUSPECTS), n, run_id) for n in range(count))])
        figures = {}
        published: dict[str, list[tuple[bytes, bytes, list]]] = {}
        for service_name, produces in PIPELINE:
            processor, pool = processors[service_name]
            figures[service_name] = await timed(
                processor, pool, server_pid, [incoming[start:start + batch] for start in range(0, len(incoming), batch)],
                count)
            for topic, rows in (await emitted(pool)).items():
                published.setdefault(topic, []).extend(rows)
            incoming = records(produces, published.get(produces, []))
            figures[service_name]["emitted"] = len(incoming)
        for service_name, _ in PIPELINE:
            processor, pool = processors[service_name]
            views = {s.topic for s in processor.service.subscriptions if s.read_every_s}
            if views:
                batches = view_batches(published, views, count)
                figures[f"{service_name} views"] = {**await timed(processor, pool, server_pid, batches, count),
                                                    "events": sum(map(len, batches))}
                await emitted(pool)
    finally:
        for pool in pools:
            await pool.close()
    return {"requests": count, "batch": batch, **figures,
            "total_us": round(sum(f["worker_cpu_us"] + f["postgres_cpu_us"] for f in figures.values()), 1)}


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.legal_cost", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--batch", type=int, default=15, help="requests per consumer batch (about 200 req/s's)")
    args = p.parse_args()
    for name, _ in PIPELINE:
        load_service(name)  # imported before the heap is frozen, as run_service does
    with tempfile.TemporaryDirectory(prefix="legal-cost-") as work:
        keys = development_keys(Path(work) / "keys")
        os.environ.update(development_environment(keys, os.environ))
        os.environ.setdefault("WARDEN_EMBEDDED_DEFAULTS", "true")  # a throwaway database: disclosure keeps its key there
        settle_heap()
        postgres = EmbeddedPostgres(Path(work) / "postgres").start()
        try:
            print(uvloop.run(measure(postgres.url, postgres.server.get_pid(), args.requests, args.batch,
                                     keys["registry"]["private_key"])))
        finally:
            postgres.stop()


if __name__ == "__main__":
    cli()
