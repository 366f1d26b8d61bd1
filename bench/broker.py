"""Section 0: does the broker's cost grow with what a partition holds?

The same 200 records/s go to a one-partition topic for `seconds`, once as one
produce request (one record batch) per record and once as one per ten records,
while a consumer reads them with Warden's consumer settings. The broker's CPU is
sampled over the first and the last tenth of each run. On Apache Kafka both stay
flat (a fetch finds its offset through the segment index). Tansu 0.6's in-memory
engine lists every batch of the partition on each fetch that has data to return
(`dynostore.rs`, `fetch`), so its CPU rises with the batches stored: that cost
is under every figure of the other sections, and it grows as they run.
Needs the embedded broker (its process is what is sampled); skipped otherwise.
"""
from __future__ import annotations

import asyncio
import time

from warden.runtime import kafka

from bench import cpu
from bench.loads import ensure_topics
from bench.stack import Stack

RECORDS_PER_S = 200
RECORD = b"x" * 400  # about the size of a report event


async def run(stack: Stack, seconds: float = 40.0) -> dict:
    if "broker" not in stack.server_pids():
        return {"skipped": "the broker is external: its CPU cannot be sampled from here"}
    out = {}
    for per_batch in (1, 10):
        out[f"records_per_batch_{per_batch}"] = await _one_shape(stack, per_batch, seconds)
    return out


async def _one_shape(stack: Stack, per_batch: int, seconds: float) -> dict:
    topic = f"bench.broker.{stack.run_id}.{per_batch}"
    await ensure_topics(stack.bootstrap, [topic], 1)
    producer = kafka.producer(stack.bootstrap)
    consumer = kafka.consumer(stack.bootstrap, f"bench-broker-{stack.run_id}-{per_batch}")
    await producer.start()
    consumer.subscribe([topic])
    await consumer.start()
    read = 0

    async def drain() -> None:
        nonlocal read
        while True:
            got = await consumer.getmany(timeout_ms=200)
            read += sum(len(records) for records in got.values())

    reader = asyncio.create_task(drain())
    window = seconds / 10
    broker = lambda: {"broker": stack.server_pids()["broker"]}  # noqa: E731
    first = asyncio.create_task(cpu.measure(broker, window))
    last = asyncio.create_task(cpu.measure(broker, window, delay=seconds - window))
    batches = 0
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch = producer.create_batch()
            for _ in range(per_batch):
                batch.append(key=None, value=RECORD, timestamp=None)
            batch.close()
            await (await producer.send_batch(batch, topic, partition=0))
            batches += 1
            await asyncio.sleep(max(0.0, start + batches * per_batch / RECORDS_PER_S - time.perf_counter()))
        first_pct, last_pct = (await first)["broker"], (await last)["broker"]
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    return {"batches": batches, "records": batches * per_batch, "read": read, "window_s": window,
            "broker_cpu_first_pct": first_pct, "broker_cpu_last_pct": last_pct}
