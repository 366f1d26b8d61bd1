"""Humans decide what the machine must not: the review API from token to decision event."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx

from tests.support.kafka import produce_event
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import (
    decision_of, publish_received, received, registered, status_of,
)
from tests.support.waiting import until

TOKENS = {"tok-alice": {"reviewer": "alice", "role": "reviewer"},
          "tok-bob": {"reviewer": "bob", "role": "reviewer"},
          "tok-carol": {"reviewer": "carol", "role": "supervisor"}}


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_two_reviewers_a_supervisor_and_the_refusals(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court, police = new_authority("court", "FR"), new_authority("police", "FR")
    speech = received(court, offense={"category": "extremism_speech", "statute": "Art. 421-2-5",
                                      "description": "Channel posts"})
    emergency = received(police, instrument={"type": "emergency_request"}, emergency=True,
                         emergency_justification="Credible threat to kill, tonight")
    account_id = speech["request"]["suspect"]["account_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court, police)
        await produce_event(bootstrap, "moderation.violations", "warden.moderation.violation.confirmed.v1", {
            "account_id": account_id, "content_id": "channel-77", "category": "terrorism",
            "decided_at": datetime.now(timezone.utc).isoformat()})
        for event in (speech, emergency):
            await publish_received(bootstrap, event)
        await status_of(bootstrap, speech["case_id"], "pending_review")
        await status_of(bootstrap, emergency["case_id"], "pending_review")

        assert (await http.get("/review/cases")).status_code == 401
        assert (await http.get("/review/cases", headers=as_("tok-mallory"))).status_code == 401
        queue = (await http.get("/review/cases", params={"limit": 1000}, headers=as_("tok-alice"))).json()
        ours = [c["case_id"] for c in queue if c["case_id"] in (emergency["case_id"], speech["case_id"])]
        assert ours == [emergency["case_id"], speech["case_id"]]  # emergencies first

        async def read_with_violation():
            case = (await http.get(f"/review/cases/{speech['case_id']}", headers=as_("tok-alice"))).json()
            return case if case["violations"] else None
        case = await until(read_with_violation)
        assert case["flags"] == ["human_rights"] and case["approvals_required"] == 2
        assert case["violations"][0]["category"] == "terrorism"
        assert {r["rule"] for r in case["rules"]} >= {"offense.speech_review", "data.grantable"}

        url = f"/review/cases/{speech['case_id']}/decisions"
        approve = {"action": "approve", "reason": "Specific incitement, proportionate order"}
        first = await http.post(url, json=approve, headers=as_("tok-alice"))
        assert first.status_code == 200 and first.json()["closed"] is False
        again = await http.post(url, json=approve, headers=as_("tok-alice"))
        assert again.status_code == 403 and "same_reviewer" in again.json()["detail"]
        not_supervisor = await http.post(url, json=approve, headers=as_("tok-bob"))
        assert not_supervisor.status_code == 403 and "supervisor_required" in not_supervisor.json()["detail"]
        narrow = {"action": "narrow", "reason": "IP addresses suffice to identify", "data_categories": ["ip_addresses"]}
        final = await http.post(url, json=narrow, headers=as_("tok-carol"))
        assert final.status_code == 200 and final.json()["closed"] is True
        closed = await http.post(url, json=approve, headers=as_("tok-bob"))
        assert closed.status_code == 409

        decided = await decision_of(bootstrap, speech["case_id"])
        await status_of(bootstrap, speech["case_id"], "approved")

        reject = {"action": "reject", "reason": "No danger to life stated in the facts"}
        one = await http.post(f"/review/cases/{emergency['case_id']}/decisions", json=reject, headers=as_("tok-bob"))
        assert one.status_code == 200 and one.json()["closed"] is True
        rejected = await decision_of(bootstrap, emergency["case_id"])
        openapi = (await http.get("/openapi.json")).json()

    assert decided["type"] == "warden.legal.request.approved.v1"
    assert decided["data"]["decided_by"] == ["alice", "carol"]
    assert decided["data"]["data_categories"] == ["ip_addresses"]
    assert decided["data"]["policy_rules"][-1]["rule"] == "review.human"
    assert rejected["type"] == "warden.legal.request.rejected.v1"
    assert rejected["data"]["decided_by"] == ["bob"]
    assert rejected["data"]["reasons"][0]["code"] == "rejected_by_reviewer"
    assert "/review/cases/{case_id}/decisions" in openapi["paths"]
    assert "HTTPBearer" in openapi["components"]["securitySchemes"]
