"""The markdown table of a run (and, given one, of an earlier run beside it)."""
from __future__ import annotations

from typing import Any


def _get(results: dict | None, *path: Any) -> Any:
    node: Any = results
    for key in path:
        if node is None:
            return None
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and len(node) > key else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
    return node


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def rows(results: dict) -> list[tuple[str, tuple, str, Any]]:
    """(metric, path into the results, target, check) for every figure of the table."""
    out: list[tuple[str, tuple, str, Any]] = [
        ("echo baseline, events/s", ("echo", "events_per_s"), "", None),
        ("echo runs, events/s (before · after the sections compared with it)", ("echo", "runs_line"), "", None),
        ("subscriber feed ingest, events/s (1 disclosure worker)", ("ingest", "events_per_s"), "", None),
        ("ingest / echo", ("ingest", "ratio_to_echo"), ">= 0.5", lambda v: v >= 0.5),
        ("moderation, reports/s (1 worker)", ("moderation", "reports_per_s"), "", None),
        ("moderation / echo", ("moderation", "ratio_to_echo"), ">= 0.5", lambda v: v >= 0.5),
        ("moderation, decisions emitted", ("moderation", "decisions"), "", None),
    ]
    for i, step in enumerate(_get(results, "legal", "steps") or []):
        r = step["target_per_s"]
        target = "< 250" if r == 200 else ""
        out += [
            (f"legal @ {r:g}/s offered: held, req/s", ("legal", "steps", i, "held_per_s"), "", None),
            (f"legal @ {r:g}/s: issued / sent", ("legal", "steps", i, "issued_of_sent"), "", None),
            (f"legal @ {r:g}/s: p50 ms", ("legal", "steps", i, "p50_ms"), "", None),
            (f"legal @ {r:g}/s: p95 ms", ("legal", "steps", i, "p95_ms"), "", None),
            (f"legal @ {r:g}/s: p99 ms", ("legal", "steps", i, "p99_ms"), target,
             (lambda v: v < 250) if r == 200 else None),
        ]
        if step.get("to_issued_record"):
            out += [(f"legal @ {r:g}/s: to the package's record, no reader's wait: p50 / p99 ms",
                     ("legal", "steps", i, "to_issued_record", "p50_p99"), "", None)]
        if step.get("p99_ms_by_window"):
            out += [(f"legal @ {r:g}/s: p99 ms of each {step['latency_window_s']:g} s, by schedule",
                     ("legal", "steps", i, "p99_windows"), "", None)]
        if step.get("cpu_ms_per_request"):
            out += [(f"legal @ {r:g}/s: CPU ms per request, offer to last package",
                     ("legal", "steps", i, "cpu_per_request"), "", None)]
        if step.get("cpu_first_s"):
            out += [(f"legal @ {r:g}/s: CPU % of one core, first → last {step['cpu_window_s']:g} s",
                     ("legal", "steps", i, "cpu_drift"), "", None)]
        for service in step.get("hops") or {}:
            out += [(f"legal @ {r:g}/s: {service} hop p50 / p99 ms", ("legal", "steps", i, "hops", service,
                                                                       "p50_p99"), "", None)]
        if step.get("wal"):
            out += [(f"legal @ {r:g}/s: WAL KB per request, the tables that wrote most",
                     ("legal", "steps", i, "wal_tables"), "", None)]
    for i, size in enumerate(_get(results, "store", "sizes") or []):
        name = f"{size['sessions'] / 1e6:g} M sessions"
        out += [
            (f"package build, {name}: p50 / p99 ms", ("store", "sizes", i, "build", "p50_p99"), "", None),
            (f"store queries only, {name}: p99 ms", ("store", "sizes", i, "query", "p99_ms"), "", None),
            (f"store load, {name}: rows/s; MB", ("store", "sizes", i, "load_and_size"), "", None),
        ]
        if i:
            out += [(f"package build ratio {name} / first, p50", ("store", "sizes", i, "build_p50_ratio"), "< 2",
                     lambda v: v < 2),
                    (f"package build ratio {name} / first, p99", ("store", "sizes", i, "build_p99_ratio"), "< 2",
                     lambda v: v < 2)]
    for name, hop in (_get(results, "broker") or {}).items():
        if name.startswith("hop_"):
            out.append((f"one hop, 200 records/s, fetch wait {hop['fetch_wait_ms']} ms: p50 / p99 / max ms; broker "
                        f"CPU % of one core", ("broker", name, "latency_and_cpu"), "", None))
    for per_batch in (1, 10):
        shape = f"records_per_batch_{per_batch}"
        out.append((f"broker CPU % of one core, first → last 10th, 200 records/s, {per_batch} per batch",
                    ("broker", shape, "cpu_drift"), "", None))
    out += [
        ("classifier score(), µs per call: p50", ("classifier", "score", "p50_us"), "", None),
        ("classifier score(), µs per call: p99", ("classifier", "score", "p99_us"), "", None),
        ("folding alone, µs per call: p50", ("classifier", "fold", "p50_us"), "", None),
        ("PDQ hash of a 640x480 image, µs: p50", ("classifier", "pdq_640x480", "p50_us"), "", None),
        ("classifier model load, ms", ("classifier", "load_ms"), "", None),
    ]
    for name in sorted(_get(results, "memory_peak_rss_mb") or {}):
        out.append((f"peak RSS {name}, MB", ("memory_peak_rss_mb", name), "", None))
    return out


def cpu_drift(first: dict[str, float], last: dict[str, float]) -> str:
    """'broker 30 → 53 · postgres 37 → 44 · …', the busiest at the end first."""
    names = sorted(set(first) | set(last), key=lambda n: -last.get(n, 0))
    return " · ".join(f"{n} {_fmt(first.get(n))} → {_fmt(last.get(n))}" for n in names)


def wal_tables(wal: dict) -> str:
    if "unavailable" in wal:
        return wal["unavailable"]
    tables = " · ".join(f"{name} {kb:.1f}" for name, kb in wal["by_table_kb_per_item"].items())
    return f"{wal['kb_per_item']:.1f}: {tables} · other {wal['other_kb_per_item']:.1f}"


def _annotate(results: dict) -> dict:
    if _get(results, "echo", "runs"):
        results["echo"].setdefault("runs_line", " · ".join(_fmt(r["events_per_s"]) for r in results["echo"]["runs"]))
    for name, shape in (_get(results, "broker") or {}).items():
        if name.startswith("hop_"):
            shape.setdefault("latency_and_cpu", f"{_fmt(shape['p50_ms'])} / {_fmt(shape['p99_ms'])} / "
                                                f"{_fmt(shape['max_ms'])}; {_fmt(shape['broker_cpu_pct'])}")
        elif name.startswith("records_per_batch_"):
            shape.setdefault("cpu_drift", f"{_fmt(shape['broker_cpu_first_pct'])} → "
                                          f"{_fmt(shape['broker_cpu_last_pct'])} ({shape['batches']:,} batches)")
    for size in _get(results, "store", "sizes") or []:
        size["build"].setdefault("p50_p99", f"{_fmt(size['build']['p50_ms'])} / {_fmt(size['build']['p99_ms'])}")
        size.setdefault("load_and_size", f"{_fmt(size['load_rows_per_s'])}; {_fmt(size['sessions_mb'])}")
    for step in _get(results, "legal", "steps") or []:
        step.setdefault("issued_of_sent", f"{step['issued']:,} / {step['sent']:,}")
        if step.get("p99_ms_by_window"):
            step.setdefault("p99_windows", " · ".join(_fmt(v) for v in step["p99_ms_by_window"]))
        if step.get("cpu_ms_per_request"):
            costs = step["cpu_ms_per_request"]
            step.setdefault("cpu_per_request", " · ".join(
                f"{name} {costs[name]:.2f}" for name in sorted(costs, key=costs.get, reverse=True)))
        if step.get("cpu_first_s"):
            step.setdefault("cpu_drift", cpu_drift(step["cpu_first_s"], step["cpu_last_s"]))
        if step.get("wal"):
            step.setdefault("wal_tables", wal_tables(step["wal"]))
        for span in [*(step.get("hops") or {}).values(), step.get("to_issued_record")]:
            if span:
                span.setdefault("p50_p99", f"{_fmt(span['p50_ms'])} / {_fmt(span['p99_ms'])}")
    return results


def markdown(results: dict, baseline: dict | None = None) -> str:
    _annotate(results)
    if baseline:
        _annotate(baseline)
    head = f"| figure | target | {results.get('label') or 'this run'} |"
    rule = "|---|---|---|"
    if baseline:
        head += f" {baseline.get('label') or 'baseline'} |"
        rule += "---|"
    lines = [f"# Warden bench ({results.get('started_at', '')})", "",
             f"Machine: {results['machine']}; options: {results['options']}; wall {results.get('wall_s')} s.", "",
             head, rule]
    for metric, path, target, check in rows(results):
        value = _get(results, *path)
        if value is None and _get(baseline, *path) is None:
            continue  # a section this run (and the baseline) left out
        verdict = ""
        if check is not None and isinstance(value, (int, float)):
            verdict = " ✓" if check(value) else " ✗"
        line = f"| {metric} | {target} | {_fmt(value)}{verdict} |"
        if baseline:
            line += f" {_fmt(_get(baseline, *path))} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
