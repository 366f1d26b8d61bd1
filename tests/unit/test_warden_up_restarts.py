"""`warden up` restarts a crashing service later and later (jittered), not thirteen times in twelve seconds."""
from __future__ import annotations

from warden.cli import stack
from warden.cli.stack import ServiceProcess


def test_a_crashing_service_waits_longer_before_each_restart(monkeypatch, tmp_path):
    clock = [1000.0]
    monkeypatch.setattr(stack.time, "monotonic", lambda: clock[0])
    svc = ServiceProcess("intake", {}, tmp_path)
    waits = []
    for _ in range(12):
        svc.started_at = clock[0]
        clock[0] += 0.2  # it crashes at once
        svc.exited()
        waits.append(svc.restart_at - clock[0])
        clock[0] = svc.restart_at
    caps = [min(0.5 * 2 ** n, 30.0) for n in range(12)]
    assert all(cap / 2 <= wait <= cap for wait, cap in zip(waits, caps)), list(zip(waits, caps))
    assert sum(waits[:5]) >= 7.75  # at most 6 starts in the first ~9 s of crashing

    svc.started_at = clock[0]
    clock[0] += 120  # a long life: the count starts again
    svc.exited()
    assert svc.restart_at - clock[0] <= 0.5
