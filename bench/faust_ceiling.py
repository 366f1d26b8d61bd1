"""Section 2b: faust's own ceiling, an agent that takes the reports and does nothing with them.

Same preloaded topic shape and events as the moderation section, same faust
settings and batching as the moderation worker (`take_events(500, within=50 ms)`,
uvloop, one worker), no decoding, no database, no table. Moderation runs on
faust (the issue asks for it), so reports/s can never exceed this figure; its
ratio to the echo baseline is the best moderation / echo can be with faust.
Runs as its own process: `python -m bench.faust_ceiling BOOTSTRAP TOPIC EVENTS`
prints one JSON line.
"""
from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid

import faust
import uvloop

from bench.stack import ROOT

BATCH, WITHIN_S = 500, 0.05


async def consume(bootstrap: str, topic: str, events: int, timeout_s: float = 600) -> dict:
    with tempfile.TemporaryDirectory() as datadir:
        app = faust.App(f"bench-faust-ceiling-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}",
                        store="memory://", datadir=datadir, web_enabled=False, loop=asyncio.get_running_loop(),
                        consumer_auto_offset_reset="earliest", broker_session_timeout=3,
                        broker_rebalance_timeout=3, broker_heartbeat_interval=0.75)
        source = app.topic(topic, key_serializer="raw", value_serializer="raw")
        seen, first, last = 0, None, None
        done = asyncio.Event()

        @app.agent(source)
        async def count(stream):
            nonlocal seen, first, last
            async for batch in stream.take_events(BATCH, within=WITHIN_S):
                first = first or time.perf_counter()
                seen += len(batch)
                last = time.perf_counter()
                if seen >= events:
                    done.set()

        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass
        finally:
            await app.stop()
    elapsed = (last - first) if first and last else 0.0
    return {"events": seen, "seconds": round(elapsed, 3),
            "events_per_s": round(seen / elapsed, 1) if elapsed else None}


async def run(bootstrap: str, topic: str, events: int) -> dict:
    """The ceiling measured in a child process, as the moderation worker runs in its own."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.faust_ceiling", bootstrap, topic, str(events),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT))
    out, _ = await child.communicate()
    if child.returncode != 0 or not out.strip():
        return {"error": f"bench.faust_ceiling exited with {child.returncode}"}
    return json.loads(out.decode().strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    bootstrap, topic, events = argv[0], argv[1], int(argv[2])
    result = uvloop.run(consume(bootstrap, topic, events))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
