"""`make bench` / `python -m bench`: every section side by side in one run, on one stack.

    python -m bench                          # everything, full size (about 15 minutes here)
    python -m bench --duration 10 --sessions-scale 0.1 --reports 20000   # quick
    python -m bench --only echo,ingest --feed-events 50000                # the subscriber feed against echo
    python -m bench --only store --store-sizes 1,10,100                    # the store up to 100 M sessions
    python -m bench --only echo,moderation --baseline bench/results/before.json
    python -m bench --only classifier        # content checks in-process, no stack (seconds)

Writes bench/results/latest.json and bench/results/latest.md. With KAFKA_BOOTSTRAP_SERVERS
and DATABASE_URL set it runs on that stack; otherwise it starts an embedded one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench import broker, classifier, echo, ingest, legal, moderation, store
from bench.report import markdown
from bench.stack import ROOT, Stack
from bench.stats import ratio

SECTIONS = ("echo", "ingest", "moderation", "legal", "store", "broker", "classifier")
STACKLESS = {"classifier"}  # sections that measure code in-process and need no broker or database


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    p.add_argument("--duration", type=float, default=60, help="seconds per legal rate step (default 60)")
    p.add_argument("--rates", default="50,200,500", help="legal offered rates, requests/s")
    p.add_argument("--send-tick-ms", type=float, default=legal.SEND_TICK_S * 1000,
                   help="the legal load generator produces once per tick (latency still counts from each "
                        "request's schedule); 0: one produce per request")
    p.add_argument("--reports", type=int, default=50_000, help="reports through moderation (and echo events)")
    p.add_argument("--feed-events", type=int, default=200_000, help="subscriber events through disclosure (ingest)")
    p.add_argument("--sessions-scale", type=float, default=1.0,
                   help="1.0: 1 M and 10 M sessions; 0.1: 100 k and 1 M (see --store-sizes)")
    p.add_argument("--store-sizes", default="1,10",
                   help="store sizes in millions of sessions, times --sessions-scale; each ratio is to the first")
    p.add_argument("--samples", type=int, default=200, help="package builds measured per store size")
    p.add_argument("--profile", action="store_true", help="py-spy flame graphs of the services into the results dir")
    p.add_argument("--wal", action="store_true",
                   help="the legal steps' WAL per request, table by table (needs a superuser: bench/wal.py)")
    p.add_argument("--baseline", type=Path, help="an earlier latest.json to show side by side (before/after)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--label", default="", help="a name for this run in the report")
    return p.parse_args(argv)


async def main(args: argparse.Namespace) -> dict:
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    work = args.out / "work"
    logs = work / "logs"
    profile_dir = args.out / "profiles" if args.profile else None
    stack = Stack(work) if set(only) - STACKLESS else None
    if stack:
        await asyncio.to_thread(stack.start)
    results: dict = {
        "label": args.label, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                    **(stack.describe() if stack else {})},
        "options": {"duration_s": args.duration, "rates": args.rates, "send_tick_ms": args.send_tick_ms, "reports": args.reports,
                    "feed_events": args.feed_events, "sessions_scale": args.sessions_scale, "samples": args.samples},
    }
    try:
        if "classifier" in only:
            print("content checks in-process (fold, classifier score, PDQ)...", flush=True)
            results["classifier"] = await asyncio.to_thread(classifier.run)
            print(f"  {results['classifier']}", flush=True)
        echo_runs = []
        if "echo" in only:
            print("echo baseline...", flush=True)
            echo_runs.append(await echo.run(stack.bootstrap, f"{stack.run_id}.before", args.reports))
            print(f"  {echo_runs[-1]}", flush=True)
        if "ingest" in only:
            print("subscriber feed ingest...", flush=True)
            results["ingest"] = await ingest.run(stack, args.feed_events, logs,
                                                 profile_dir / "ingest.svg" if profile_dir else None)
            print(f"  {results['ingest']}", flush=True)
        if "moderation" in only:
            print("moderation throughput...", flush=True)
            results["moderation"] = await moderation.run(stack, args.reports, logs,
                                                         profile_dir / "moderation.svg" if profile_dir else None)
            print(f"  {results['moderation']}", flush=True)
        if echo_runs and ("ingest" in results or "moderation" in results):
            print("echo baseline again, after the sections compared with it...", flush=True)
            echo_runs.append(await echo.run(stack.bootstrap, f"{stack.run_id}.after", args.reports))
            print(f"  {echo_runs[-1]}", flush=True)
        if echo_runs:
            results["echo"] = echo.bracketing(echo_runs)
            for section, rate_key in (("ingest", "events_per_s"), ("moderation", "reports_per_s")):
                if section in results:
                    results[section]["ratio_to_echo"] = ratio(results[section][rate_key],
                                                              results["echo"]["events_per_s"])
        if "legal" in only:
            print("legal pipeline latency...", flush=True)
            rates = [float(r) for r in args.rates.split(",") if r.strip()]
            results["legal"] = await legal.run(stack, rates, args.duration, logs, profile_dir,
                                               send_tick_s=args.send_tick_ms / 1000, wal=args.wal)
        if "store" in only:
            print("subscriber-store scaling...", flush=True)
            sizes = [int(float(m) * 1_000_000 * args.sessions_scale) for m in args.store_sizes.split(",") if m.strip()]
            results["store"] = await store.run(stack, sizes, args.samples)
        if "broker" in only:
            print("broker: one hop at each fetch wait, and its cost against stored batches...", flush=True)
            results["broker"] = await broker.run(stack)
            print(f"  {results['broker']}", flush=True)
        memory = {}
        if "moderation" in results:
            memory["moderation"] = results["moderation"]["peak_rss_mb"]
        if "ingest" in results:
            memory["disclosure (feed)"] = results["ingest"]["peak_rss_mb"]
        if "legal" in results:
            memory.update(results["legal"]["peak_rss_mb"])
        results["memory_peak_rss_mb"] = memory
        results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if stack:
            await asyncio.to_thread(stack.stop)
    return results


def cli(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = asyncio.run(main(args))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(results, baseline))
    print((args.out / "latest.md").read_text())
    print(f"written: {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
