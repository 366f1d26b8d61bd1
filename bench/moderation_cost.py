"""What a report costs moderation, without a broker: `python -m bench.moderation_cost [--reports N]`.

The bench's own reports (bench/loads.py) go straight to the service's `BatchProcessor`, in batches
of the consumer's size, on an embedded PostgreSQL of their own; the items they are about are
described on `platform.content` first, as in the bench's moderation section. It prints, per report,
the wall time, the worker's CPU and Postgres's CPU (the server and its backends) over the report
batches only: where `make bench` says how fast, this says whose time it is (docs/performance.md).
Like the service, it freezes the startup heap and runs on uvloop. `py-spy record -- python -m
bench.moderation_cost` shows where the worker's part goes.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from pathlib import Path

import psutil
import uvloop
from aiokafka.structs import ConsumerRecord

from bench.cpu import with_children
from bench.loads import content_ids, contents, reports
from bench.stack import created_database
from warden.embedded import EmbeddedPostgres
from warden.runtime.batch import BatchProcessor
from warden.runtime.database import create_pool, migrate
from warden.runtime.runner import settle_heap


def records(topic: str, triples: list[tuple[bytes, bytes, list]], partitions: int = 4) -> list[ConsumerRecord]:
    return [ConsumerRecord(topic, zlib.crc32(key) % partitions, offset, 0, 0, key, value, None, 0, len(value),
                           tuple(headers)) for offset, (key, value, headers) in enumerate(triples)]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in with_children(pid):
        try:
            times = psutil.Process(p).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def measure(server_url: str, server_pid: int, count: int) -> dict:
    from moderation.service import build_service

    service = build_service()
    url = await created_database(server_url, f"cost_{int(time.time())}")
    await migrate(url, service.schema, service.migration_sets)
    pool = await create_pool(url, service.schema, 4)
    try:
        processor = BatchProcessor(service, pool)
        batch = service.batch_max_records or 500
        described = records("platform.content", contents(content_ids("cost", count)))
        for start in range(0, len(described), 500):
            await processor.process(described[start:start + 500])
        reported = records("moderation.reports.submitted", reports("cost", count))
        await pool.execute("CHECKPOINT")
        wall, worker, server = time.perf_counter(), time.process_time(), cpu_seconds(server_pid)
        for start in range(0, len(reported), batch):
            await processor.process(reported[start:start + batch])
        wall, worker = time.perf_counter() - wall, time.process_time() - worker
        server = cpu_seconds(server_pid) - server
        recorded = await pool.fetchval("SELECT count(*) FROM reports")
        decisions = await pool.fetchval("SELECT count(*) FROM decisions")
    finally:
        await pool.close()
    per = 1e6 / count
    return {"reports": count, "recorded": recorded, "decisions": decisions, "batch": batch,
            "wall_us": round(wall * per, 1), "worker_cpu_us": round(worker * per, 1),
            "postgres_cpu_us": round(server * per, 1), "reports_per_s": round(count / wall)}


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.moderation_cost", description=__doc__.splitlines()[0])
    p.add_argument("--reports", type=int, default=20_000)
    args = p.parse_args()
    os.environ.setdefault("WARDEN_MODERATION_TRUST_NEW", "1.0")  # as the bench: hot items delist by volume
    import moderation.service  # noqa: F401 - imported before the heap is frozen, as run_service does
    settle_heap()
    with tempfile.TemporaryDirectory(prefix="moderation-cost-") as work:
        postgres = EmbeddedPostgres(Path(work) / "postgres").start()
        try:
            print(uvloop.run(measure(postgres.url, postgres.server.get_pid(), args.reports)))
        finally:
            postgres.stop()


if __name__ == "__main__":
    cli()
