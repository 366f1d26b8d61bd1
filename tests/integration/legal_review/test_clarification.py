"""A reviewer asks the authority a question; the authority answers with a signed amendment or withdraws.

On the real broker and Postgres, legal review alone: the answer and the withdrawal are published as
intake publishes them (the authority's signed document, verbatim), and as an attacker would (unsigned,
signed by another authority, answering another question, replayed): only the authority's own have an
effect, every other lands in the DLQ with its reason.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from tests.support.audit import anchored, verify
from tests.support.kafka import produce_event, wait_for_events, wait_for_records, event_of
from tests.support.requests import new_authority, signed
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import decision_of, publish_received, received, registered, status_of
from tests.integration.legal_review.test_review_api import TOKENS, as_
from tests.support.waiting import until

AMENDED, WITHDRAWN = "warden.legal.request.amended.v1", "warden.legal.request.withdrawn.v1"


def answer(authority: dict, event: dict, clarification_id: str, private_key: str | None = None, **fields) -> dict:
    request = event["submitted"]
    return signed({"request_id": request["request_id"], "authority_id": request["authority_id"],
                   "clarification_id": clarification_id, "answer": "The channel is the suspect's own; IP only.",
                   "amended_at": datetime.now(timezone.utc).isoformat(), **fields},
                  private_key or authority["private_key"])


def withdrawal(authority: dict, event: dict, private_key: str | None = None) -> dict:
    request = event["submitted"]
    return signed({"request_id": request["request_id"], "authority_id": request["authority_id"],
                   "reason": "the investigation was closed", "withdrawn_at": datetime.now(timezone.utc).isoformat()},
                  private_key or authority["private_key"])


async def dead_letter(bootstrap: str, topic: str, event: dict) -> str:
    [record] = await wait_for_records(bootstrap, f"{topic}.dlq",
                                      lambda r: (event_of(r) or {}).get("id") == event["id"])
    headers = dict(record.headers)
    assert headers["dlq.service"] == b"legal-review"
    return headers["dlq.reason"].decode()


async def audit_actions(database_url: str, case_id: str) -> list[tuple[str, dict]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT action, detail FROM legal_review.audit_log WHERE case_id = $1 ORDER BY seq",
                                case_id)
    finally:
        await conn.close()
    return [(r["action"], json.loads(r["detail"])) for r in rows]


async def test_a_question_pauses_the_case_until_the_authoritys_signed_answer(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court, other = new_authority("court", "FR"), new_authority("court", "FR")
    speech = received(court, offense={"category": "extremism_speech", "statute": "Art. 421-2-5",
                                      "description": "Channel posts"})
    case_id = speech["case_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court, other)
        await publish_received(bootstrap, speech)
        await status_of(bootstrap, case_id, "pending_review")
        before = (await http.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()

        question = "Is the channel the suspect's own? Which data do you need to identify them?"
        asked = await http.post(f"/review/cases/{case_id}/clarifications", json={"question": question},
                                headers=as_("tok-alice"))
        vote = await http.post(f"/review/cases/{case_id}/decisions", headers=as_("tok-bob"),
                               json={"action": "approve", "reason": "proportionate"})
        second = await http.post(f"/review/cases/{case_id}/clarifications", json={"question": "And more?"},
                                 headers=as_("tok-bob"))
        shared = await status_of(bootstrap, case_id, "needs_clarification")
        [progress] = await wait_for_events(bootstrap, "legal.requests.progress",
                                           lambda e: e["data"].get("case_id") == case_id
                                           and e["data"]["status"] == "needs_clarification")
        clarification_id = asked.json()["clarifications"][0]["clarification_id"]

        forgeries = {
            "unsigned": dict(answer(court, speech, clarification_id), signature="AAAA"),
            "another authority's key": answer(court, speech, clarification_id, other["private_key"]),
            "another question": answer(court, speech, "00000000-0000-0000-0000-000000000000"),
            "changed after signing": dict(answer(court, speech, clarification_id),
                                          data_categories=["ip_addresses", "phone_number", "message_content"]),
        }
        forged = {name: await produce_event(bootstrap, "legal.requests.amended", AMENDED, data)
                  for name, data in forgeries.items()}
        reasons = {name: await dead_letter(bootstrap, "legal.requests.amended", event)
                   for name, event in forged.items()}
        still = (await http.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()

        genuine = answer(court, speech, clarification_id, data_categories=["ip_addresses"])
        await produce_event(bootstrap, "legal.requests.amended", AMENDED, genuine, source="/warden/intake")

        async def back_in_review():
            case = (await http.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()
            return case if case["status"] == "pending_review" else None
        amended = await until(back_in_review)
        replayed = await produce_event(bootstrap, "legal.requests.amended", AMENDED, genuine)
        replay_reason = await dead_letter(bootstrap, "legal.requests.amended", replayed)

        url = f"/review/cases/{case_id}/decisions"
        again = await http.post(url, json={"action": "approve", "reason": "own channel, IP only"},
                                headers=as_("tok-alice"))
        final = await http.post(url, json={"action": "approve", "reason": "agreed"}, headers=as_("tok-carol"))
        decided = await decision_of(bootstrap, case_id)
        trail = await audit_actions(database_url, case_id)

    assert asked.status_code == 201 and asked.json()["status"] == "needs_clarification"
    assert vote.status_code == 409 and "awaiting_clarification" in vote.json()["detail"]
    assert second.status_code == 409
    # The shared topic says a question is open, never what: that is for the authority API (progress).
    assert shared["data"]["reasons"] == [{"code": "clarification_requested", "message": ""}]
    assert question not in json.dumps(shared) and shared["data"]["deadline"] is None
    assert progress["data"]["clarification"]["question"] == question
    assert progress["data"]["clarification"]["clarification_id"] == clarification_id

    assert reasons == {"unsigned": "bad_signature", "another authority's key": "bad_signature",
                       "another question": "not_the_open_clarification", "changed after signing": "bad_signature"}
    assert still["status"] == "needs_clarification" and still["granted_categories"] == before["granted_categories"]
    assert replay_reason == "no_open_clarification"

    # Analysed again: the amended request asks for IP addresses only; the clock ran again with the
    # deadline moved by the time the question was open.
    assert amended["request"]["data_categories"] == ["ip_addresses"]
    assert amended["granted_categories"] == ["ip_addresses"] and amended["review_round"] == 1
    assert amended["clarifications"][0]["answer"] == genuine["answer"]
    paused = datetime.fromisoformat(amended["deadline"]) - datetime.fromisoformat(before["deadline"])
    answered_after = (datetime.fromisoformat(amended["clarifications"][0]["answered_at"])
                      - datetime.fromisoformat(amended["clarifications"][0]["asked_at"]))
    assert timedelta(0) < paused and abs(paused - answered_after) < timedelta(seconds=1)

    # A new round: alice, who asked, approves the amended request; earlier votes would not count.
    assert again.status_code == 200 and again.json()["closed"] is False
    assert final.status_code == 200 and final.json()["closed"] is True
    assert decided["data"]["data_categories"] == ["ip_addresses"]
    assert decided["data"]["signed_amendments"] == [genuine]
    actions = [a for a, _ in trail]
    assert actions.index("case.clarification_requested") < actions.index("case.amended") < actions.index("case.decided")
    [(_, amended_entry)] = [(a, d) for a, d in trail if a == "case.amended"]
    assert amended_entry["answer"] == genuine["answer"] and amended_entry["signature"] == genuine["signature"]


async def test_the_authority_withdraws_an_open_case_and_only_it_can(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    # Luxembourg: no other test's court, whose requests this test's legal review may read from the shared broker.
    court, other = new_authority("court", "LU"), new_authority("court", "LU")
    speech = received(court, offense={"category": "extremism_speech", "statute": "Art. 421-2-5",
                                      "description": "Channel posts"})
    case_id = speech["case_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as http:
        await registered(bootstrap, database_url, court, other)
        await publish_received(bootstrap, speech)
        await status_of(bootstrap, case_id, "pending_review")
        forged = await produce_event(bootstrap, "legal.requests.withdrawn", WITHDRAWN,
                                     withdrawal(court, speech, other["private_key"]))
        forged_reason = await dead_letter(bootstrap, "legal.requests.withdrawn", forged)
        open_still = (await http.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()["status"]

        genuine = withdrawal(court, speech)
        await produce_event(bootstrap, "legal.requests.withdrawn", WITHDRAWN, genuine, source="/warden/intake")
        told = await status_of(bootstrap, case_id, "withdrawn")
        replayed = await produce_event(bootstrap, "legal.requests.withdrawn", WITHDRAWN, genuine)
        replay_reason = await dead_letter(bootstrap, "legal.requests.withdrawn", replayed)
        case = (await http.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()
        vote = await http.post(f"/review/cases/{case_id}/decisions", headers=as_("tok-alice"),
                               json={"action": "approve", "reason": "proportionate"})
        listed = (await http.get("/review/cases", params={"status": "withdrawn", "limit": 1000},
                                 headers=as_("tok-alice"))).json()
        trail = await audit_actions(database_url, case_id)
        at = datetime.now(timezone.utc)
        report = (await http.get("/review/transparency", params={"quarter": f"{at.year}Q{(at.month - 1) // 3 + 1}"},
                                 headers=as_("tok-alice"))).json()
        await anchored(bootstrap, database_url, "legal-review", "legal_review")
    verified = await asyncio.to_thread(verify, bootstrap, database_url, "legal-review")

    assert forged_reason == "bad_signature" and open_still == "pending_review"
    assert verified.exit_code == 0, verified.output  # the chain with its withdrawal, linked, signed, anchored
    [luxembourg] = [row for row in report["countries"] if row["country"] == "LU"]
    assert luxembourg["withdrawn"] == 1 and luxembourg["pending_review"] == 0
    assert told["data"]["reasons"] == [{"code": "withdrawn", "message": ""}]
    assert replay_reason == "case_closed"
    assert case["status"] == "withdrawn" and vote.status_code == 409
    assert case_id in [c["case_id"] for c in listed]
    [(_, entry)] = [(a, d) for a, d in trail if a == "case.withdrawn"]
    assert entry["signature"] == genuine["signature"] and entry["status_before"] == "pending_review"
