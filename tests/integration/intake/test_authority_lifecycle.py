"""A request's life with a question and an answer, and its withdrawal, over the authority API.

The running stack (intake, legal review, disclosure on the real broker and Postgres), driven as an
authority drives it: `AuthorityClient` signs every call (RFC 9421) and `warden authority-client`
is invoked as a person would. Reviewers use the review API.
"""
from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import httpx
from click.testing import CliRunner

from warden.cli.disclosure import open_package
from warden.cli.main import cli
from warden.contract.events import LegalRequest, RequestApproved
from warden.identifiers import case_id_for, normalise_suspect
from warden.provenance import sign_decision
from warden.signing import generate_keypair

from tests.integration.intake.test_authority_api import client_of, subscriber_stored
from tests.integration.legal_review.test_review_api import TOKENS, as_
from tests.support import keys
from tests.support.kafka import event_of, produce_event, wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority
from tests.support.waiting import until

NOW = datetime.now(timezone.utc)
SPEECH = {"category": "extremism_speech", "statute": "Art. 421-2-5", "description": "Channel posts"}


async def a_suspect(bootstrap: str) -> tuple[str, str]:
    """An account with a phone number and a session in the last days: (account_id, username)."""
    account_id, username = f"acct-{uuid.uuid4().hex[:10]}", f"poster_{uuid.uuid4().hex[:8]}"
    phone = "+3361" + "".join(random.choice("0123456789") for _ in range(7))
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
        "updated_at": (NOW - timedelta(days=100)).isoformat()})
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.9", "observed_at": (NOW - timedelta(days=5)).isoformat()})
    return account_id, username


def cli_base(client, authority: dict, key_file) -> list[str]:
    key_file.write_text(json.dumps({"private_key": authority["private_key"], "public_key": authority["public_key"]}))
    return ["authority-client", "--url", client.url, "--authority", authority["authority_id"], "--key", str(key_file)]


def status_is(client, request_id: str, wanted: str):
    async def probe():
        answer = (await client.status(request_id)).json()
        return answer if answer["status"] == wanted else None
    return probe


def approval_of(submitted: dict, authority: dict) -> dict:
    """The approval legal review would sign for this request (the test decision key)."""
    request = LegalRequest.model_validate(submitted)
    approval = RequestApproved(
        case_id=case_id_for(request.authority_id, request.request_id), request_id=request.request_id,
        authority_id=request.authority_id, suspect=normalise_suspect(request.suspect), kind="disclosure",
        data_categories=request.data_categories, period=request.period, policy_rules=[
            {"rule": "review.human", "outcome": "passed"}], decided_by=["alice", "carol"],
        signed_request=submitted, authority_key=authority["public_key"], decided_at=datetime.now(timezone.utc))
    return sign_decision(approval.model_dump(mode="json"), keys.DECISION["private_key"])


async def test_a_question_an_amendment_then_approval_disclosure_and_the_certified_package(
        bootstrap, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    platform = generate_keypair()
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", platform["private_key"])
    court = new_authority("court", "FR")
    await register_authority(bootstrap, court)
    account_id, username = await a_suspect(bootstrap)
    data = signed(request_data(court, suspect={"username": "@" + username}, offense=SPEECH), court["private_key"])
    request_id = data["request_id"]
    review = service_settings(bootstrap, database_url)

    async with running("intake", service_settings(bootstrap, database_url)) as intake, \
            running("legal-review", review), \
            running("disclosure", service_settings(bootstrap, database_url)), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{review.http_port}", timeout=10) as reviewers:
        for schema in ("intake", "legal_review", "disclosure"):
            await wait_for_authority(database_url, schema, court["authority_id"])
        await until(lambda: subscriber_stored(database_url, account_id), 60)
        client, runner = client_of(intake, court), CliRunner()
        base = cli_base(client, court, tmp_path / "court.json")
        assert (await client.submit(data)).status_code == 202
        pending = await until(status_is(client, request_id, "pending_review"), 60)
        case_id = pending["case_id"]

        question = "Is this channel the suspect's own? The phone number seems beyond what the offense needs."
        asked = await reviewers.post(f"/review/cases/{case_id}/clarifications", json={"question": question},
                                     headers=as_("tok-alice"))
        waiting = await until(status_is(client, request_id, "needs_clarification"), 60)
        status_cli = await asyncio.to_thread(runner.invoke, cli, [*base, "status", request_id])
        shared = await wait_for_events(bootstrap, "legal.requests.status", lambda e: e["data"].get("case_id") == case_id
                                       and e["data"]["status"] == "needs_clarification")
        answer_cli = await asyncio.to_thread(runner.invoke, cli, [
            *base, "answer", request_id, "Yes, it is his own channel; IP addresses suffice.",
            "--categories", "ip_addresses"])
        again = await asyncio.to_thread(runner.invoke, cli, [*base, "answer", request_id, "Once more"])
        await until(status_is(client, request_id, "pending_review"), 60)
        case = (await reviewers.get(f"/review/cases/{case_id}", headers=as_("tok-alice"))).json()
        for token in ("tok-alice", "tok-carol"):
            voted = await reviewers.post(f"/review/cases/{case_id}/decisions", headers=as_(token),
                                         json={"action": "approve", "reason": "own channel, IP only"})
            assert voted.status_code == 200, voted.text
        history = await until(status_is(client, request_id, "disclosed"), timeout=90)
        fetch_cli = await asyncio.to_thread(runner.invoke, cli, [*base, "fetch", request_id, "--platform-key",
                                                                 platform["public_key"]])
        [sealed] = (await client.disclosures(request_id)).json()
        withdraw_late = await asyncio.to_thread(runner.invoke, cli, [*base, "withdraw", request_id])

    assert asked.status_code == 201
    # The authority reads the question over its API, and only there.
    assert waiting["clarification"]["question"] == question
    [asked_entry] = [h for h in waiting["history"] if h["status"] == "needs_clarification"]
    assert asked_entry["clarification"]["question"] == question
    assert status_cli.exit_code == 0 and question in status_cli.output and "answer" in status_cli.output
    assert question not in json.dumps(shared)
    assert answer_cli.exit_code == 0, answer_cli.output
    assert again.exit_code != 0  # nothing left to answer
    assert case["request"]["data_categories"] == ["ip_addresses"] and case["review_round"] == 1

    statuses = [h["status"] for h in history["history"]]
    for earlier, later in [("received", "pending_review"), ("pending_review", "needs_clarification"), ("needs_clarification", "answer_sent"),
                           ("answer_sent", "approved"), ("approved", "disclosed")]:
        assert statuses.index(earlier) < statuses.index(later), statuses
    opened = open_package(sealed, court["private_key"], platform["public_key"])
    assert opened["account_id"] == account_id
    assert "ip_addresses" in opened and "phone_numbers" not in opened  # the amended request's scope
    certificate = opened["certificate"]
    assert certificate["case_id"] == case_id and certificate["instrument"]["reference"] == data["instrument"]["reference"]
    assert fetch_cli.exit_code == 0, fetch_cli.output
    assert "Certificate of authenticity" in fetch_cli.output and "ordinary course" in fetch_cli.output
    assert account_id in fetch_cli.output
    assert withdraw_late.exit_code != 0 and "409 package_built" in withdraw_late.output


async def test_a_withdrawn_request_gets_no_package_even_if_an_approval_comes_later(
        bootstrap, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court, other = new_authority("court", "FR"), new_authority("court", "FR")
    for authority in (court, other):
        await register_authority(bootstrap, authority)
    account_id, username = await a_suspect(bootstrap)
    data = signed(request_data(court, suspect={"username": "@" + username}, offense=SPEECH), court["private_key"])
    request_id, case_id = data["request_id"], case_id_for(court["authority_id"], data["request_id"])

    async with running("intake", service_settings(bootstrap, database_url)) as intake, \
            running("legal-review", service_settings(bootstrap, database_url)), \
            running("disclosure", service_settings(bootstrap, database_url)):
        for schema in ("intake", "legal_review", "disclosure"):
            for authority in (court, other):
                await wait_for_authority(database_url, schema, authority["authority_id"])
        await until(lambda: subscriber_stored(database_url, account_id), 60)
        client, runner = client_of(intake, court), CliRunner()
        base = cli_base(client, court, tmp_path / "court.json")
        assert (await client.submit(data)).status_code == 202
        await until(status_is(client, request_id, "pending_review"), 60)

        # Straight onto Kafka, signed with another authority's key: both services dead-letter it.
        forged = await produce_event(bootstrap, "legal.requests.withdrawn", "warden.legal.request.withdrawn.v1",
                                     client_of(intake, court, other["private_key"]).withdrawal(request_id))
        dead = await wait_for_records(bootstrap, "legal.requests.withdrawn.dlq",
                                      lambda r: (event_of(r) or {}).get("id") == forged["id"], count=2)
        unsigned = await produce_event(bootstrap, "legal.requests.withdrawn", "warden.legal.request.withdrawn.v1",
                                       dict(client.withdrawal(request_id), signature="bm90IGEgc2lnbmF0dXJl"))
        dead_unsigned = await wait_for_records(bootstrap, "legal.requests.withdrawn.dlq",
                                               lambda r: (event_of(r) or {}).get("id") == unsigned["id"], count=2)
        withdraw_cli = await asyncio.to_thread(runner.invoke, cli, [
            base[0], "--json", *base[1:], "withdraw", request_id, "--reason", "investigation closed"])
        withdrawn = await until(status_is(client, request_id, "withdrawn"), 60)
        twice = await client.withdraw(request_id, client.withdrawal(request_id))
        # The authority's own withdrawal, copied back onto Kafka: each service refuses it the second time.
        [sent] = await wait_for_events(bootstrap, "legal.requests.withdrawn",
                                       lambda e: e["data"]["request_id"] == request_id
                                       and e["source"] == "/warden/intake")
        replayed = await produce_event(bootstrap, "legal.requests.withdrawn", "warden.legal.request.withdrawn.v1",
                                       sent["data"])
        replays = await wait_for_records(bootstrap, "legal.requests.withdrawn.dlq",
                                         lambda r: (event_of(r) or {}).get("id") == replayed["id"], count=2)

        # An approval of the withdrawn case reaches disclosure anyway (late, or replayed): no package.
        await produce_event(bootstrap, "legal.requests.decided", "warden.legal.request.approved.v1",
                            approval_of(data, court), source="/warden/legal-review")
        [cancelled] = await wait_for_events(bootstrap, "legal.requests.progress",
                                            lambda e: e["data"].get("case_id") == case_id
                                            and e["data"]["status"] == "cancelled", timeout=30)
        packages = (await client.disclosures(request_id)).json()

    reasons = {dict(r.headers)["dlq.service"].decode(): dict(r.headers)["dlq.reason"].decode() for r in dead}
    assert reasons == {"legal-review": "bad_signature", "disclosure": "bad_signature"}
    assert {dict(r.headers)["dlq.service"].decode(): dict(r.headers)["dlq.reason"].decode()
            for r in dead_unsigned} == {"legal-review": "bad_signature", "disclosure": "bad_signature"}
    assert withdraw_cli.exit_code == 0, withdraw_cli.output
    assert json.loads(withdraw_cli.output)["status"] == "withdrawal_sent"
    statuses = [h["status"] for h in withdrawn["history"]]
    assert statuses.index("withdrawal_sent") < statuses.index("withdrawn")
    assert twice.status_code == 409 and twice.json()["code"] == "request_closed"
    assert {dict(r.headers)["dlq.service"].decode(): dict(r.headers)["dlq.reason"].decode() for r in replays} == {
        "legal-review": "case_closed", "disclosure": "replayed_withdrawal"}
    assert [r["code"] for r in cancelled["data"]["reasons"]] == ["withdrawn"]
    assert packages == []


async def test_answers_and_withdrawals_the_api_refuses(bootstrap, database_url):
    """Intake alone: the request never leaves `received`, so no question is open and legal review has no case."""
    court, other = new_authority(), new_authority()
    for authority in (court, other):
        await register_authority(bootstrap, authority)
    data = signed(request_data(court), court["private_key"])
    request_id = data["request_id"]
    async with running("intake", service_settings(bootstrap, database_url)) as intake:
        for authority in (court, other):
            await wait_for_authority(database_url, "intake", authority["authority_id"])
        client, stranger = client_of(intake, court), client_of(intake, other)
        assert (await client.submit(data)).status_code == 202
        await until(status_is(client, request_id, "received"), 60)
        withdrawal = client.withdrawal(request_id)
        answers = {
            "withdraw in transit": await client.withdraw(request_id, withdrawal),
            "answer with no question": await client.answer(request_id, client.amendment(request_id, "q-1", "yes")),
            "body of another request": await client.withdraw(request_id, client.withdrawal("REQ-other")),
            "body of another authority": await stranger.withdraw(request_id, withdrawal),
            "body not signed by the authority": await client.withdraw(
                request_id, client_of(intake, court, other["private_key"]).withdrawal(request_id)),
            "body changed after signing": await client.withdraw(request_id, dict(withdrawal, reason="changed")),
            "another authority's request": await stranger.withdraw(request_id, stranger.withdrawal(request_id)),
        }
        history = (await client.status(request_id)).json()

    assert {name: (r.status_code, r.json()["code"]) for name, r in answers.items()} == {
        "withdraw in transit": (409, "request_in_transit"),
        "answer with no question": (409, "no_open_clarification"),
        "body of another request": (422, "request_mismatch"),
        "body of another authority": (403, "foreign_authority"),
        "body not signed by the authority": (422, "bad_document_signature"),
        "body changed after signing": (422, "bad_document_signature"),
        "another authority's request": (404, "no_such_request"),
    }
    assert "withdrawal_sent" not in [h["status"] for h in history["history"]]  # nothing was sent
