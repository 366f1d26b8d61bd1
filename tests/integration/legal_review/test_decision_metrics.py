"""What an operator reads off legal review's metrics: how long decisions take, by whom, and how long the
oldest case has waited for a reviewer.

A fresh consumer group also reads what earlier tests left on the shared topics: those cases land in this
test's database too, so the figures are checked against the database, not against this test's cases only.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
from prometheus_client import REGISTRY

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import (
    decision_of, publish_received, received, registered, status_of,
)

TOKENS = {"tok-bob": {"reviewer": "bob", "role": "reviewer"}}
HISTOGRAM = "warden_legal_time_to_decision_seconds"


def observed(outcome: str, decided_by: str, le: str | None = None) -> float:
    name, labels = f"{HISTOGRAM}_count", {"outcome": outcome, "decided_by": decided_by}
    if le is not None:
        name, labels = f"{HISTOGRAM}_bucket", {**labels, "le": le}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def oldest_pending(priority: str) -> float | None:
    return REGISTRY.get_sample_value("warden_legal_oldest_pending_case_age_seconds", {"priority": priority})


async def fetchval(database_url: str, sql: str, *args):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def oldest_in_table(database_url: str, emergency: bool) -> float:
    return await fetchval(database_url, """
        SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 FROM legal_review.cases
        WHERE status = 'pending_review' AND emergency = $1""", emergency)


async def gauges_follow_the_table(database_url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        expected = {"emergency": await oldest_in_table(database_url, True),
                    "standard": await oldest_in_table(database_url, False)}
        if all(abs((oldest_pending(p) or 0) - age) < 5 for p, age in expected.items()):
            return
        assert time.monotonic() < deadline, f"gauges {oldest_pending('emergency')}, {oldest_pending('standard')}" \
                                            f" but the table says {expected}"
        await asyncio.sleep(0.2)


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
    before = {key: observed(*key) for key in (("approved", "policy"), ("rejected", "policy"),
                                                ("rejected", "reviewers"))}
    within_an_hour, within_four = observed("rejected", "reviewers", "3600.0"), observed("rejected", "reviewers",
                                                                                        "14400.0")
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court, police)
        for event in (approved, rejected, emergency):
            await publish_received(bootstrap, event)
        await decision_of(bootstrap, approved["case_id"])
        await decision_of(bootstrap, rejected["case_id"])
        await status_of(bootstrap, emergency["case_id"], "pending_review")
        assert await oldest_in_table(database_url, True) >= 3 * 3600  # ours, or one older
        await gauges_follow_the_table(database_url)

        answer = await http.post(f"/review/cases/{emergency['case_id']}/decisions", headers={
            "Authorization": "Bearer tok-bob"}, json={"action": "reject", "reason": "No danger to life stated"})
        assert answer.status_code == 200 and answer.json()["closed"] is True
        await gauges_follow_the_table(database_url)  # which no longer counts ours

    by_policy = {outcome: await fetchval(database_url, """
        SELECT count(*) FROM legal_review.cases WHERE status = $1 AND decided_by[1] LIKE 'policy/%'""", outcome)
        for outcome in ("approved", "rejected")}
    assert by_policy["approved"] >= 1 and by_policy["rejected"] >= 1
    assert observed("approved", "policy") - before[("approved", "policy")] == by_policy["approved"]
    assert observed("rejected", "policy") - before[("rejected", "policy")] == by_policy["rejected"]
    assert observed("rejected", "reviewers") == before[("rejected", "reviewers")] + 1
    # the reviewers' decision took the three hours the case waited
    assert observed("rejected", "reviewers", "3600.0") == within_an_hour
    assert observed("rejected", "reviewers", "14400.0") == within_four + 1
