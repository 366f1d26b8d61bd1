"""SIGTERM stops a service in bounded time even when its broker and database are gone.

An orchestrator sends SIGTERM and waits a grace period (Kubernetes: 30 s) before
SIGKILL; a service that hangs on a client that can no longer reach anything would
always be killed, mid-drain. Its own broker and Postgres here, so the session's
stay up for the other tests.
"""
from __future__ import annotations

import signal
import time

import pytest

from tests.support.processes import ServiceProcess, moderation_available
from warden.embedded import EmbeddedKafka, EmbeddedPostgres
from warden.runtime.kafka import create_topics

GRACE_S = 25


@pytest.mark.parametrize("name", ["intake", "moderation"])
async def test_sigterm_with_broker_and_database_gone_exits_within_the_grace_period(name, tmp_path):
    if name == "moderation" and not moderation_available():
        pytest.skip("moderation service not present")
    kafka = EmbeddedKafka(log_file=tmp_path / "tansu.log").start()
    postgres = EmbeddedPostgres(tmp_path / "pg").start()
    service = None
    try:
        await create_topics(kafka.bootstrap)
        service = ServiceProcess(name, bootstrap=kafka.bootstrap, database_url=postgres.url,
                                 group_prefix="shutdown", log_dir=tmp_path).start()
        await service.wait_ready(90)
        kafka.stop()
        postgres.stop()
        time.sleep(3)  # let the service notice
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        try:
            code = service.process.wait(GRACE_S)
        except Exception:
            pytest.fail(f"{name} still running {GRACE_S} s after SIGTERM; see {service.log_path}")
        assert code == 0, service.logs()[-2000:]
        assert time.monotonic() - started < GRACE_S
    finally:
        if service is not None and service.alive():
            service.process.kill()
        kafka.stop()
        postgres.stop()
