"""Section 1: the echo baseline, a bare aiokafka consumer that produces one event per event consumed.

No decoding, no database: consume a batch, produce each record (same key, value
and headers) to another topic, wait for the acks, commit the offsets. Same
broker, same partition count and the same event bytes as the moderation section,
with Warden's producer and consumer settings. This is the practical limit of a
Python Kafka service on this machine.

A run takes two seconds or so, and the same machine's echo moves by a third from
one such run to the next. `python -m bench` therefore runs it before and again
after the sections it is compared with (ingest, moderation), and compares them
with the mean of the two (`bracketing`).
"""
from __future__ import annotations

import asyncio
import time

from warden.runtime import kafka

from bench.loads import ensure_topics, produce_all, reports, topic_partitions
from bench.stats import rate


async def run(bootstrap: str, run_id: str, events: int, batch: int = 500) -> dict:
    partitions = topic_partitions("moderation.reports.submitted")
    source, sink = f"bench.echo.{run_id}.in", f"bench.echo.{run_id}.out"
    await ensure_topics(bootstrap, [source, sink], partitions)
    produce_s = await produce_all(bootstrap, source, reports(run_id, events))
    consumer = kafka.consumer(bootstrap, f"bench-echo-{run_id}")
    producer = kafka.producer(bootstrap)
    await producer.start()
    consumer.subscribe([source])
    await consumer.start()
    seen = 0
    first = None
    try:
        deadline = time.monotonic() + 600
        while seen < events and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=200, max_records=batch)
            if not got:
                continue
            if first is None:
                first = time.perf_counter()
            futures = [await producer.send(sink, r.value, key=r.key, headers=list(r.headers))
                       for records in got.values() for r in records]
            await asyncio.gather(*futures)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in got.items()})
            seen += len(futures)
        elapsed = time.perf_counter() - first if first else 0.0
    finally:
        await consumer.stop()
        await producer.stop()
    return {"events": seen, "seconds": round(elapsed, 3), "events_per_s": rate(seen, elapsed),
            "partitions": partitions, "preload_events_per_s": rate(events, produce_s), "topic": source}


def bracketing(runs: list[dict]) -> dict:
    """The echo runs around the sections compared with it: the mean of their rates is the baseline,
    each run kept beside it."""
    return {"events_per_s": round(sum(r["events_per_s"] for r in runs) / len(runs), 1), "runs": runs}
