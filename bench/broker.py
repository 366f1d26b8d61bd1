"""Section 0: what the broker does to a hop, and does its cost grow with what a partition holds?

One hop at each of FETCH_WAITS_MS: 200 records/s in 20 ms ticks (as the legal
load generator sends) to a four-partition topic, read by one consumer with
Warden's consumer settings and that fetch wait; each record's time from its send
to its receipt, and the broker's CPU over the run. On
Apache Kafka a fetch is answered as soon as data arrives, whatever the wait.
Tansu 0.6.0 answers at once when a read finds records; a read that finds none
sleeps half of what is left of the wait and reads again (`service/fetch.rs`), so
a record that arrives while the consumer's next fetch is parked waits up to half
the wait, and each parked fetch reads every partition about log2(wait in ms)
times.

Then the same 200 records/s go to a one-partition topic for `seconds`, once as one
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

from aiokafka import TopicPartition

from warden.runtime import kafka

from bench import cpu
from bench.loads import ensure_topics
from bench.stack import Stack
from bench.stats import summary_ms

RECORDS_PER_S = 200
RECORD = b"x" * 400  # about the size of a report event
FETCH_WAITS_MS = (75, 50, 25)
HOP_TICK_S = 0.020
HOP_PARTITIONS = 4


async def run(stack: Stack, seconds: float = 40.0, hop_seconds: float = 20.0) -> dict:
    out = {f"hop_fetch_wait_{wait}": await _one_hop(stack, wait, hop_seconds) for wait in FETCH_WAITS_MS}
    if "broker" not in stack.server_pids():
        out["growth_skipped"] = "the broker is external: its CPU cannot be sampled from here"
        return out
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


async def _one_hop(stack: Stack, fetch_wait_ms: int, seconds: float) -> dict:
    """Send → receipt of each record through one consumer with this fetch wait; the broker's CPU over the
    run (when embedded), % of one core."""
    topic = f"bench.hop.{stack.run_id}.{fetch_wait_ms}"
    await ensure_topics(stack.bootstrap, [topic], HOP_PARTITIONS)
    producer = kafka.producer(stack.bootstrap)
    consumer = kafka.consumer(stack.bootstrap, None, fetch_max_wait_ms=fetch_wait_ms)
    await producer.start()
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(HOP_PARTITIONS)])
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while True:
            got = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            latencies.extend(now - sent_at[r.value] for records in got.values() for r in records)

    receiver = asyncio.create_task(receive())
    broker = stack.server_pids().get("broker", [])
    try:
        await asyncio.sleep(1.0)  # the consumer's first fetches are parked before anything is sent
        usage = asyncio.create_task(cpu.measure(lambda: {"broker": broker}, seconds))
        start, ticks = time.perf_counter(), 0
        per_tick = round(RECORDS_PER_S * HOP_TICK_S)
        while time.perf_counter() - start < seconds:
            for _ in range(per_tick):
                value = str(len(sent_at)).encode()
                sent_at[value] = time.perf_counter()
                await producer.send(topic, value, key=value)
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * HOP_TICK_S - time.perf_counter()))
        shares = await usage
        deadline = time.perf_counter() + 2.0
        while len(latencies) < len(sent_at) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        receiver.cancel()
        await consumer.stop()
        await producer.stop()
    return {"fetch_wait_ms": fetch_wait_ms, "sent": len(sent_at), "received": len(latencies),
            **summary_ms(latencies), "broker_cpu_pct": shares["broker"] if broker else None}
