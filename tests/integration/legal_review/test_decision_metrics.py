"""What an operator reads off legal review's metrics: how long decisions take, by whom, and how long the
oldest case has waited for a reviewer."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
from prometheus_client import REGISTRY

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import (
    decision_of, publish_received, received, registered, status_of,
)

TOKENS = {"tok-bob": {"reviewer": "bob", "role": "reviewer"}}


def decisions(outcome: str, decided_by: str) -> float:
    return REGISTRY.get_sample_value("warden_legal_time_to_decision_seconds_count",
                                     {"outcome": outcome, "decided_by": decided_by}) or 0.0


def oldest_pending(priority: str) -> float | None:
    return REGISTRY.get_sample_value("warden_legal_oldest_pending_case_age_seconds", {"priority": priority})


async def test_time_to_decision_by_policy_and_by_reviewers_and_the_oldest_waiting_case(
        bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    monkeypatch.setenv("WARDEN_LEGAL_SWEEP_INTERVAL_S", "0.2")
    court, police = new_authority("court", "FR"), new_authority("police", "FR")
    approved = received(court)
    rejected = received(police, instrument={"type": "subpoena"})
    waited = datetime.now(timezone.utc) - timedelta(hours=3)  # received three hours ago, still waiting
    emergency = received(police, received_at=waited, instrument={"type": "emergency_request"}, emergency=True,
                         emergency_justification="Credible threat to kill, tonight")
    before = {key: decisions(*key) for key in (("approved", "policy"), ("rejected", "policy"),
                                                ("rejected", "reviewers"))}
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court, police)
        for event in (approved, rejected, emergency):
            await publish_received(bootstrap, event)
        await decision_of(bootstrap, approved["case_id"])
        await decision_of(bootstrap, rejected["case_id"])
        await status_of(bootstrap, emergency["case_id"], "pending_review")

        deadline = time.monotonic() + 20
        while (oldest_pending("emergency") or 0) < 3 * 3600:
            assert time.monotonic() < deadline, f"oldest emergency case: {oldest_pending('emergency')}"
            await asyncio.sleep(0.1)
        assert oldest_pending("emergency") < 3 * 3600 + 600
        assert oldest_pending("standard") == 0  # none waits

        answer = await http.post(f"/review/cases/{emergency['case_id']}/decisions", headers={
            "Authorization": "Bearer tok-bob"}, json={"action": "reject", "reason": "No danger to life stated"})
        assert answer.status_code == 200 and answer.json()["closed"] is True

        deadline = time.monotonic() + 20
        while oldest_pending("emergency") != 0:
            assert time.monotonic() < deadline, "the decided case still counts as waiting"
            await asyncio.sleep(0.1)

    assert decisions("approved", "policy") == before[("approved", "policy")] + 1
    assert decisions("rejected", "policy") == before[("rejected", "policy")] + 1
    assert decisions("rejected", "reviewers") == before[("rejected", "reviewers")] + 1
    # the reviewers' decision took the three hours the case waited
    buckets = {float(s.labels["le"]): s.value for m in REGISTRY.collect()
               if m.name == "warden_legal_time_to_decision_seconds" for s in m.samples
               if s.name.endswith("_bucket") and s.labels["decided_by"] == "reviewers"
               and s.labels["outcome"] == "rejected"}
    assert buckets[3600.0] == before[("rejected", "reviewers")] and buckets[4 * 3600.0] >= 1
