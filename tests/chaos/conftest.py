"""One chaos stack per module: its own Tansu (behind a cuttable proxy) and Postgres, every service a process.

The figures of the run (events sent, kills, outages, lost, duplicated) are written
to test-artifacts/chaos-summary.json when the module ends; docs/reliability.md
quotes the last full run.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from warden.embedded import EmbeddedPostgres
from warden.runtime.kafka import create_topics
from tests.chaos.harness import MODERATION_TOKENS, REVIEW_TOKENS, services_under_test, write_summary
from tests.support.processes import ProxiedKafka, ServiceProcess
from tests.support.requests import new_authority, register_authority

SUMMARY = Path(os.environ.get("WARDEN_CHAOS_SUMMARY", Path(__file__).resolve().parents[2] / "test-artifacts"
                              / "chaos-summary.json"))


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.kafka = ProxiedKafka(log_file=root / "tansu.log").start()
        self.postgres = EmbeddedPostgres(root / "pg").start()
        self.database_url = self.postgres.url
        self.authority = new_authority("court", "FR")
        asyncio.run(create_topics(self.bootstrap))
        asyncio.run(register_authority(self.bootstrap, self.authority))
        self.group_prefix = prefix = f"chaos-{uuid.uuid4().hex[:6]}"
        extra = {"WARDEN_REVIEW_TOKENS": json.dumps(REVIEW_TOKENS),
                 "WARDEN_MODERATION_TOKENS": json.dumps(MODERATION_TOKENS)}
        self.services = {name: ServiceProcess(name, bootstrap=self.bootstrap, database_url=self.database_url,
                                              group_prefix=prefix, log_dir=root, extra_env=extra).start()
                         for name in services_under_test()}
        self.summary: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "services": list(self.services), "scenarios": {}}

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    async def all_ready(self, timeout: float = 120) -> None:
        await asyncio.gather(*(s.wait_ready(timeout) for s in self.services.values()))

    def close(self) -> None:
        for service in self.services.values():
            service.terminate()
        self.kafka.stop()
        self.postgres.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("chaos"))
    try:
        yield stack
    finally:
        scenarios = stack.summary["scenarios"].values()
        stack.summary["totals"] = {k: sum(s.get(k, 0) for s in scenarios) for k in (
            "events_sent", "requests", "reports", "subscriber_sessions", "kills", "postgres_outages",
            "broker_outages", "lost", "duplicated", "redelivered")}
        write_summary(SUMMARY, stack.summary)
        stack.close()
