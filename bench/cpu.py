"""CPU shares of the processes on the machine while a step runs, in % of one core.

On two shared cores the services, the broker, Postgres and the load generator all
compete; sampling each one's CPU time over a window shows which of them a figure
is waiting on, and whether that changes over a run.
"""
from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Iterable

import psutil

Groups = Callable[[], dict[str, Iterable[int]]]  # name -> pids, asked again at each sample


def cpu_seconds(groups: dict[str, Iterable[int]]) -> dict[str, dict[int, float]]:
    """user + system CPU seconds so far of every pid, per group; pids that are gone are left out."""
    out: dict[str, dict[int, float]] = {}
    for name, pids in groups.items():
        out[name] = {}
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            out[name][pid] = times.user + times.system
    return out


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each group spent between two samples.

    Only pids seen in both samples count: a process that started or ended inside
    the window would otherwise be counted with its whole life or not at all.
    """
    used = {}
    for name, now in after.items():
        then = before.get(name, {})
        used[name] = sum(now[pid] - then[pid] for pid in now if pid in then)
    return used


def share_of_core(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                  seconds: float) -> dict[str, float]:
    """% of one core each group used between two samples (`cpu_used`)."""
    return {name: round(100 * used / seconds, 1) for name, used in cpu_used(before, after).items()}


def ms_per_item(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                items: int) -> dict[str, float]:
    """CPU milliseconds each group spent per item between two samples (`cpu_used`): what an item costs,
    whatever else the machine ran meanwhile (shares of a core depend on that; this hardly does)."""
    return {name: round(1000 * used / max(items, 1), 3) for name, used in cpu_used(before, after).items()}


async def measure(groups: Groups, seconds: float, delay: float = 0.0) -> dict[str, float]:
    """Shares over `seconds`, starting `delay` seconds from now."""
    await asyncio.sleep(delay)
    before = cpu_seconds(groups())
    await asyncio.sleep(seconds)
    return share_of_core(before, cpu_seconds(groups()), seconds)


def with_children(pid: int | None) -> list[int]:
    """A process and its children (Postgres: the postmaster and its backends)."""
    if pid is None:
        return []
    try:
        parent = psutil.Process(pid)
        return [pid, *(c.pid for c in parent.children(recursive=True))]
    except psutil.Error:
        return []


def this_process() -> list[int]:
    return [os.getpid()]


SERVICE_IN_CMDLINE = re.compile(r"\bservice ([a-z][a-z-]*)")


def roles_of_run(root: int, server_dir: str) -> dict[str, list[int]]:
    """The processes of one bench run, by role: each `warden service NAME` under its name, the broker, the
    PostgreSQL server whose data directory lies under `server_dir` with its backends (the postmaster
    detaches: it is no descendant of the run), and the run's own process (the load generator) as `bench`.
    Any other descendant is left out."""
    roles: dict[str, list[int]] = {"bench": [root]}
    try:
        descendants = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return {}
    for process in descendants:
        try:
            cmdline = " ".join(process.cmdline())
        except psutil.Error:
            continue
        service = SERVICE_IN_CMDLINE.search(cmdline)
        if service:
            roles.setdefault(service.group(1), []).append(process.pid)
        elif "tansu" in cmdline:
            roles.setdefault("broker", []).append(process.pid)
    for process in psutil.process_iter(["name", "cmdline"]):
        if serves_from(process.info["name"] or "", " ".join(process.info["cmdline"] or ()), server_dir):
            roles["postgres"] = with_children(process.pid)
    return roles


def serves_from(name: str, cmdline: str, directory: str) -> bool:
    """A PostgreSQL postmaster whose data directory (`-D`) lies under `directory`."""
    return name.startswith("postgres") and f" -D {directory.rstrip('/')}/" in f" {cmdline}"


class RunSampler:
    """CPU seconds of a bench run's processes by role (`roles_of_run`), sampled every `every_s` seconds in
    a thread while the run goes on: what a checkout's run spends, measured from outside and the same way
    whatever that checkout's own bench measures."""

    def __init__(self, root: int, server_dir: str, every_s: float = 1.0):
        self.root, self.server_dir, self.every_s = root, server_dir, every_s
        self.samples: list[tuple[float, dict[str, dict[int, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RunSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), cpu_seconds(roles_of_run(self.root, self.server_dir))))
            self._stop.wait(self.every_s)


def busiest_window(samples: list[tuple[float, dict[str, dict[int, float]]]], seconds: float,
                   busy: Iterable[str]) -> dict[str, float] | None:
    """Cores each role used over the stretch of at least `seconds` in which the `busy` roles (the services:
    busy only while requests are offered) used the most CPU; None when the samples span less.

    A role's CPU is summed from one sample to the next (`cpu_used`): a process that
    started inside the stretch counts from its first sample, and one missing from a single sample (a
    backend that came and went, a read that failed) loses that second, not the whole stretch."""
    busy = set(busy)
    steps = [cpu_used(before, after) for (_, before), (_, after) in zip(samples, samples[1:])]
    best: tuple[float, dict[str, float]] | None = None
    end = 0
    for start, (t0, _) in enumerate(samples):
        end = max(end, start)
        while end < len(samples) and samples[end][0] - t0 < seconds:
            end += 1
        if end == len(samples):
            break
        elapsed = samples[end][0] - t0
        used: dict[str, float] = {}
        for step in steps[start:end]:
            for role, cpu in step.items():
                used[role] = used.get(role, 0.0) + cpu
        cores = {role: round(cpu / elapsed, 3) for role, cpu in used.items()}
        load = sum(share for role, share in cores.items() if role in busy)
        if best is None or load > best[0]:
            best = (load, cores)
    return best[1] if best else None
