"""Reviewers see a suspect's moderation violations still in force: one overturned on appeal or review leaves
the case; a withdrawal takes back only the confirmation it followed (a later re-confirmation stays)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx

from tests.integration.legal_review.support import publish_received, received, registered, status_of
from tests.integration.legal_review.test_review_api import TOKENS, as_
from tests.support.console import sign_in
from tests.support.kafka import produce_event
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.support.waiting import until

VIOLATIONS = "moderation.violations"
CONFIRMED, WITHDRAWN = "warden.moderation.violation.confirmed.v1", "warden.moderation.violation.withdrawn.v1"


async def test_overturned_violations_leave_the_case_and_only_those(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    event = received(court, offense={"category": "other", "statute": "Art. 1", "description": "Unlisted offense"})
    account = event["request"]["suspect"]["account_id"]
    now = datetime.now(timezone.utc)

    def confirmed(content_id: str, category: str, at: datetime) -> dict:
        return {"account_id": account, "content_id": content_id, "category": category, "decided_at": at.isoformat()}

    def withdrawn(content_id: str, at: datetime) -> dict:
        return {"account_id": account, "content_id": content_id, "decision_id": f"dec-{content_id}",
                "withdrawn_at": at.isoformat()}

    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, event["case_id"], "pending_review")
        for content_id, category, at in (("post-1", "terrorism", now - timedelta(days=9)),
                                         ("post-2", "scam", now - timedelta(days=8)),
                                         ("post-3", "hate_speech", now - timedelta(days=2))):
            await produce_event(bootstrap, VIOLATIONS, CONFIRMED, confirmed(content_id, category, at),
                                source="/warden/moderation")
        # post-1 overturned on appeal; post-3's withdrawal predates its (re-)confirmation: it stays in force.
        await produce_event(bootstrap, VIOLATIONS, WITHDRAWN, withdrawn("post-1", now - timedelta(days=5)),
                            source="/warden/moderation")
        await produce_event(bootstrap, VIOLATIONS, WITHDRAWN, withdrawn("post-3", now - timedelta(days=4)),
                            source="/warden/moderation")
        await produce_event(bootstrap, VIOLATIONS, CONFIRMED, confirmed("post-4", "spam", now - timedelta(days=1)),
                            source="/warden/moderation")  # after the withdrawals, on the same partition

        async def all_read():
            case = (await http.get(f"/review/cases/{event['case_id']}", headers=as_("tok-alice"))).json()
            return case if "post-4" in {v["content_id"] for v in case["violations"]} else None
        case = await until(all_read)
        page = await _console_page(http, event["case_id"])

    assert sorted(v["content_id"] for v in case["violations"]) == ["post-2", "post-3", "post-4"]
    assert "post-1" not in page and all(c in page for c in ("post-2", "post-3", "post-4"))


async def _console_page(http: httpx.AsyncClient, case_id: str) -> str:
    await sign_in(http, "tok-alice")
    answer = await http.get(f"/console/cases/{case_id}")
    assert answer.status_code == 200
    section = answer.text.split('id="h-violations"', 1)[1].split('id="h-four-eyes"', 1)[0]
    return section
