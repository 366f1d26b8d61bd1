"""CPU shares of the processes on the machine while a step runs, in % of one core.

On two shared cores the services, the broker, Postgres and the load generator all
compete; sampling each one's CPU time over a window shows which of them a figure
is waiting on, and whether that changes over a run.
"""
from __future__ import annotations

import asyncio
import os
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


def share_of_core(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                  seconds: float) -> dict[str, float]:
    """% of one core each group used between two samples.

    Only pids seen in both samples count: a process that started or ended inside
    the window would otherwise be counted with its whole life or not at all.
    """
    shares = {}
    for name, now in after.items():
        then = before.get(name, {})
        used = sum(now[pid] - then[pid] for pid in now if pid in then)
        shares[name] = round(100 * used / seconds, 1)
    return shares


def ms_per_item(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                items: int) -> dict[str, float]:
    """CPU milliseconds each group spent per item between two samples: what an item costs, whatever
    else the machine ran meanwhile (shares of a core depend on that; this hardly does)."""
    costs = {}
    for name, now in after.items():
        then = before.get(name, {})
        used = sum(now[pid] - then[pid] for pid in now if pid in then)
        costs[name] = round(1000 * used / max(items, 1), 3)
    return costs


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
