"""The legal pipeline of two checkouts, side by side: `python -m bench.sidebyside BEFORE AFTER`.

Each checkout is a directory with its own `.venv` (`make` made it) and its own bench. Runs alternate
in pairs, the order swapped every pair (before-after, after-before, ...), so that a machine slowing
down or speeding up through the session weighs on both alike. Every run is that checkout's own
`python -m bench --only legal --rates RATE --duration S` on its own embedded broker and database.

On a shared machine one run's p99 moves by tens of per cent with what else runs, so one pair says
little: it prints each pair's p99 and CPU per request with their ratios (after / before), then the
ratio of the means and the median of the pairs' ratios. Results: OUT/runs/*/latest.json, and
OUT/sidebyside.json and .md.

CPU per request is measured here, from outside, the same way for both checkouts whatever their own
bench measures (v1's measures none): every second, the CPU seconds of the run's processes by role
(each service, the broker, the run's PostgreSQL server with its backends, the bench process that
offers the load; bench.cpu.RunSampler); over the stretch of the offer in which the services were
busiest (its length the duration less 20 s, leaving out the ramp and the drain), each role's cores
divided by the requests held per second.

`--busy CORES` runs both checkouts with that much of the machine's CPU taken by busy loops
(bench.busy) for the length of each run: how each holds up on a machine shared with other work.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.busy import Busy
from bench.cpu import RunSampler, busiest_window
from bench.stats import ratio, ratio_interval

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    side: str  # before | after
    pair: int
    started_at: str
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None  # every process of the run: services, Postgres, broker, load generator
    held_per_s: float
    cpu_by_role: dict[str, float] | None = None  # the same, per role (services by name, broker, postgres, bench)


def order(pairs: int) -> list[tuple[int, str]]:
    """(pair, side) in the order to run them: before first in even pairs, after first in odd ones."""
    runs = []
    for pair in range(pairs):
        sides = ("before", "after") if pair % 2 == 0 else ("after", "before")
        runs.extend((pair, side) for side in sides)
    return runs


def run_of(result: dict, side: str, pair: int, cores: dict[str, float] | None) -> Run:
    """The figures of one `python -m bench --only legal` result (its latest.json) at its one rate, with the
    cores each role of the run used while it was busiest (None: not measured)."""
    steps = result["legal"]["steps"]
    if len(steps) != 1:
        raise ValueError(f"a side-by-side run has one rate, this result has {len(steps)}")
    step = steps[0]
    by_role = ({role: round(1000 * used / step["held_per_s"], 3) for role, used in sorted(cores.items())}
               if cores and step["held_per_s"] else None)
    return Run(side=side, pair=pair, started_at=result["started_at"], p50_ms=step["p50_ms"],
               p99_ms=step["p99_ms"], cpu_ms_per_request=round(sum(by_role.values()), 3) if by_role else None,
               held_per_s=step["held_per_s"], cpu_by_role=by_role)


def compare(runs: list[Run]) -> dict:
    """Per pair, and over all pairs: after / before of p99 and of CPU per request."""
    sides = {(r.pair, r.side): r for r in runs}
    pairs = sorted({r.pair for r in runs if (r.pair, "before") in sides and (r.pair, "after") in sides})
    if not pairs:
        raise ValueError("no complete pair")
    rows = []
    for pair in pairs:
        before, after = sides[(pair, "before")], sides[(pair, "after")]
        rows.append({"pair": pair, "p99_before": before.p99_ms, "p99_after": after.p99_ms,
                     "p99_ratio": ratio(after.p99_ms, before.p99_ms),
                     "cpu_before": before.cpu_ms_per_request, "cpu_after": after.cpu_ms_per_request,
                     "cpu_ratio": (ratio(after.cpu_ms_per_request, before.cpu_ms_per_request)
                                   if before.cpu_ms_per_request and after.cpu_ms_per_request else None)})

    def mean(key: str) -> float:
        return round(statistics.fmean(row[key] for row in rows), 3)

    summary = {"pairs": rows,
               "p99_mean_before": mean("p99_before"), "p99_mean_after": mean("p99_after"),
               "p99_ratio_of_means": ratio(mean("p99_after"), mean("p99_before")),
               "p99_median_ratio": round(statistics.median(row["p99_ratio"] for row in rows), 3),
               "p99_ratio_interval": ratio_interval([(row["p99_before"], row["p99_after"]) for row in rows]),
               "cpu_ratio_of_means": None, "cpu_median_ratio": None, "cpu_ratio_interval": None}
    if all(row["cpu_ratio"] is not None for row in rows):  # CPU only where both sides measured it in every pair
        summary["cpu_ratio_of_means"] = ratio(mean("cpu_after"), mean("cpu_before"))
        summary["cpu_median_ratio"] = round(statistics.median(row["cpu_ratio"] for row in rows), 3)
        summary["cpu_ratio_interval"] = ratio_interval([(row["cpu_before"], row["cpu_after"]) for row in rows])
    summary["cpu_by_role"] = by_role([sides[(pair, side)] for pair in pairs for side in ("before", "after")])
    return summary


def by_role(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Per role, the mean CPU ms per request of each side over the runs that measured it; a role missing from
    some of a side's runs counts as 0 in those, a role a side never had is left out of that side."""
    out: dict[str, dict[str, float]] = {}
    for side in ("before", "after"):
        measured = [r.cpu_by_role for r in runs if r.side == side and r.cpu_by_role]
        for role in sorted({role for roles in measured for role in roles}):
            out.setdefault(role, {})[side] = round(statistics.fmean(roles.get(role, 0.0) for roles in measured), 3)
    return out


def _interval(bounds: list[float] | tuple[float, float] | None) -> str:
    return f" (90 % bootstrap interval over the pairs {bounds[0]}–{bounds[1]})" if bounds else ""


def markdown(summary: dict, before: str, after: str, rate: float, duration: float, busy: float = 0) -> str:
    load = [f"other load: busy loops taking {busy:g} of the machine's cores through every run"] if busy else []
    lines = [f"# Legal pipeline side by side: {rate:g} req/s for {duration:g} s", "",
             f"before: `{before}`  ", f"after: `{after}`" + ("  " if load else ""), *load, "",
             "| pair | p99 before, ms | p99 after, ms | p99 after / before | CPU ms/request before | after | "
             "CPU after / before |", "|---|---|---|---|---|---|---|"]
    for row in summary["pairs"]:
        cpu = [row[key] if row[key] is not None else "n/a" for key in ("cpu_before", "cpu_after", "cpu_ratio")]
        lines.append(f"| {row['pair'] + 1} | {row['p99_before']} | {row['p99_after']} | {row['p99_ratio']} | "
                     f"{cpu[0]} | {cpu[1]} | {cpu[2]} |")
    lines += ["", f"p99 means: {summary['p99_mean_before']} before, {summary['p99_mean_after']} after: "
                  f"**{summary['p99_ratio_of_means']}**{_interval(summary.get('p99_ratio_interval'))}; "
                  f"median of the pairs' ratios {summary['p99_median_ratio']}",
              (f"CPU per request: ratio of the means {summary['cpu_ratio_of_means']}"
               f"{_interval(summary.get('cpu_ratio_interval'))}, median of the pairs' ratios "
               f"{summary['cpu_median_ratio']}" if summary["cpu_ratio_of_means"] is not None
               else "CPU per request: not measured on both sides"), ""]
    if summary.get("cpu_by_role"):
        lines += ["| CPU ms per request, mean of the runs | before | after | after − before |", "|---|---|---|---|"]
        for role, sides in summary["cpu_by_role"].items():
            before_ms, after_ms = sides.get("before"), sides.get("after")
            change = round(after_ms - before_ms, 3) if before_ms is not None and after_ms is not None else "n/a"
            lines.append(f"| {role} | {before_ms if before_ms is not None else 'n/a'} | "
                         f"{after_ms if after_ms is not None else 'n/a'} | {change} |")
        lines.append("")
    return "\n".join(lines)


SERVICES = ("intake", "legal-review", "disclosure")


def bench_once(checkout: Path, out: Path, rate: float, duration: float, busy: float = 0
               ) -> tuple[dict, dict[str, float] | None]:
    """The run's latest.json, and the cores each role used over the busiest `duration - 20` s; `busy`:
    the cores other work takes meanwhile (bench.busy)."""
    python = checkout / ".venv" / "bin" / "python"
    out.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "bench", "--only", "legal", "--rates", f"{rate:g}", "--duration", f"{duration:g}",
               "--out", str(out)]
    with open(out / "log", "w") as log, Busy(busy):
        run = subprocess.Popen(command, cwd=checkout, stdout=log, stderr=subprocess.STDOUT)
        with RunSampler(run.pid, str(out)) as sampler:
            if run.wait():
                raise subprocess.CalledProcessError(run.returncode, command)
    return (json.loads((out / "latest.json").read_text()),
            busiest_window(sampler.samples, max(10.0, duration - 20), SERVICES))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="checkout measured as 'before' (with its own .venv)")
    p.add_argument("after", type=Path, help="checkout measured as 'after' (with its own .venv)")
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sidebyside")
    p.add_argument("--busy", type=float, default=0, metavar="CORES",
                   help="cores taken by busy loops through every run (bench.busy), for both checkouts alike")
    args = p.parse_args(argv)
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    for side, checkout in checkouts.items():
        if not (checkout / ".venv" / "bin" / "python").exists():
            sys.exit(f"{side}: {checkout} has no .venv (`make .venv/.installed` there makes it)")
    runs = []
    for pair, side in order(args.pairs):
        stamp = datetime.now(timezone.utc).strftime("%H%M%S")
        result, cores = bench_once(checkouts[side], args.out / "runs" / f"{pair + 1}-{side}-{stamp}", args.rate,
                                   args.duration, args.busy)
        run = run_of(result, side, pair, cores)
        runs.append(run)
        cpu = "n/a" if run.cpu_ms_per_request is None else f"{run.cpu_ms_per_request:5.2f}"
        print(f"pair {pair + 1} {side:6}  p50 {run.p50_ms:7.1f}  p99 {run.p99_ms:7.1f}  "
              f"CPU {cpu} ms/request  held {run.held_per_s}/s", flush=True)
    summary = compare(runs)
    (args.out / "sidebyside.json").write_text(json.dumps(
        {"before": str(checkouts["before"]), "after": str(checkouts["after"]), "rate": args.rate,
         "duration": args.duration, "busy_cores": args.busy, "runs": [asdict(r) for r in runs], **summary},
        indent=2) + "\n")
    report = markdown(summary, str(checkouts["before"]), str(checkouts["after"]), args.rate, args.duration,
                      args.busy)
    (args.out / "sidebyside.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
