"""The authority API on the real broker and Postgres, driven by `AuthorityClient` (what the CLI uses).

A request's whole life over HTTP (submit, approval, disclosure, fetch and open),
and every refusal: wrong key, revoked authority, replayed signature, stale or
future `created`, body changed after signing, component not covered, another
authority's request (404 exactly as a missing one).
"""
from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
from click.testing import CliRunner

from warden.cli.authority_client import AuthorityClient
from warden.cli.disclosure import open_package
from warden.cli.main import cli
from warden.http_signatures import sign_request as sign_call
from warden.signing import generate_keypair

from tests.support.kafka import produce_event
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority
from tests.support.waiting import until

API = "/authority/v1"
NOW = datetime.now(timezone.utc)


def client_of(runtime, authority: dict, private_key: str | None = None) -> AuthorityClient:
    return AuthorityClient(f"http://127.0.0.1:{runtime.settings.http_port}", authority["authority_id"],
                           private_key or authority["private_key"])


async def key_revoked(database_url: str, authority_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT status = 'revoked' FROM intake.authorities WHERE authority_id = $1",
                                        authority_id))
    finally:
        await conn.close()


async def subscriber_stored(database_url: str, account_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM disclosure.sessions WHERE account_id = $1", account_id))
    finally:
        await conn.close()


def refusal(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code and body["detail"] and "Traceback" not in response.text
    return response.status_code, body["code"]


async def test_a_request_lives_its_whole_life_over_the_authority_api(bootstrap, database_url, monkeypatch,
                                                                     tmp_path):
    platform = generate_keypair()
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", platform["private_key"])
    court = new_authority()
    await register_authority(bootstrap, court)
    account_id = f"acct-{uuid.uuid4().hex[:10]}"
    username = f"dealer_{uuid.uuid4().hex[:8]}"
    phone = "+3361" + "".join(random.choice("0123456789") for _ in range(7))
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
        "updated_at": (NOW - timedelta(days=100)).isoformat()})
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.7", "observed_at": (NOW - timedelta(days=5)).isoformat()})
    data = signed(request_data(court, suspect={"username": "@" + username}), court["private_key"])

    async with running("intake", service_settings(bootstrap, database_url)) as intake, \
            running("legal-review", service_settings(bootstrap, database_url)), \
            running("disclosure", service_settings(bootstrap, database_url)) as disclosure:
        for schema in ("intake", "legal_review", "disclosure"):
            await wait_for_authority(database_url, schema, court["authority_id"])
        await until(lambda: subscriber_stored(database_url, account_id), 60)
        client = client_of(intake, court)
        accepted = await client.submit(data)

        async def disclosed():
            answer = (await client.status(data["request_id"])).json()
            return answer if answer["status"] == "disclosed" else None
        history = await until(disclosed, 60)
        sealed = (await client.disclosures(data["request_id"])).json()
        listed = (await client.list()).json()

        platform_url = f"http://127.0.0.1:{disclosure.settings.http_port}"
        key_file = tmp_path / "court.json"
        key_file.write_text(json.dumps({"private_key": court["private_key"], "public_key": court["public_key"]}))
        base = ["authority-client", "--url", client.url, "--authority", court["authority_id"], "--key", str(key_file)]
        runner = CliRunner()
        status_cli = await asyncio.to_thread(runner.invoke, cli, [*base, "status", data["request_id"]])
        async with httpx.AsyncClient() as http:
            platform_key = (await http.get(platform_url + "/platform-key")).json()["public_key"]
        fetch_cli = await asyncio.to_thread(runner.invoke, cli, [
            base[0], "--json", *base[1:], "fetch", data["request_id"], "--platform-key", platform_key])

    assert accepted.status_code == 202
    assert accepted.headers["location"] == f"{API}/requests/{data['request_id']}"
    statuses = [h["status"] for h in history["history"]]
    assert statuses[0] == "received" and "approved" in statuses and statuses[-1] == "disclosed"
    assert history["case_id"] and all(h["case_id"] == history["case_id"] for h in history["history"])
    assert [r["request_id"] for r in listed["requests"]] == [data["request_id"]]
    [package] = sealed
    assert set(package) == {"case_id", "request_id", "authority_id", "generated_at", "period", "sealed", "sha256",
                            "signature"}  # nothing in clear about the suspect
    opened = open_package(package, court["private_key"], platform["public_key"])
    assert opened["account_id"] == account_id and opened["request_id"] == data["request_id"]
    assert status_cli.exit_code == 0, status_cli.output
    assert "disclosed" in status_cli.output and "received" in status_cli.output
    assert fetch_cli.exit_code == 0, fetch_cli.output
    assert json.loads(fetch_cli.output)[0]["account_id"] == account_id


async def test_calls_not_signed_by_an_active_authority_for_its_own_requests_are_refused(bootstrap, database_url):
    court, other, revoked = new_authority(), new_authority(), new_authority()
    for authority in (court, other, revoked):
        await register_authority(bootstrap, authority)
    await register_authority(bootstrap, revoked, status="revoked")
    data = signed(request_data(court), court["private_key"])

    async with running("intake", service_settings(bootstrap, database_url)) as intake:
        for authority in (court, other):
            await wait_for_authority(database_url, "intake", authority["authority_id"])
        await until(lambda: key_revoked(database_url, revoked["authority_id"]), timeout=30)
        client, stranger = client_of(intake, court), client_of(intake, other)
        accepted = await client.submit(data)
        path = f"{API}/requests/{data['request_id']}"
        body = json.dumps(data).encode()
        ago, ahead = datetime.now(timezone.utc) - timedelta(minutes=6), datetime.now(timezone.utc) + timedelta(minutes=6)

        once = client.build("GET", path)
        first, replayed = await client.send(once), await client.send(once)
        signed_post = client.build("POST", f"{API}/requests", json.dumps(signed(request_data(court),
                                                                                court["private_key"])).encode())
        changed = httpx.Request("POST", signed_post.url, headers=signed_post.headers,
                                content=json.dumps(signed(request_data(court), court["private_key"])).encode())
        undigested = httpx.Request("POST", client.url + f"{API}/requests", content=body, headers={
            **sign_call("POST", client.url + f"{API}/requests", None, court["authority_id"], court["private_key"]),
            "Content-Type": "application/json"})
        refusals = {
            "unsigned": refusal(await client.send(httpx.Request("GET", client.url + path))),
            "wrong key": refusal(await client_of(intake, court, other["private_key"]).status(data["request_id"])),
            "revoked": refusal(await client_of(intake, revoked).list()),
            "replayed": refusal(replayed),
            "stale": refusal(await client.send(client.build("GET", path, created=ago))),
            "future": refusal(await client.send(client.build("GET", path, created=ahead))),
            "changed body": refusal(await client.send(changed)),
            "digest not covered": refusal(await client.send(undigested)),
            "another's request": refusal(await stranger.submit(data)),
            "request not signed by its authority": refusal(
                await client.submit(signed(request_data(court), other["private_key"]))),
        }
        others_request = await stranger.status(data["request_id"])
        missing = await stranger.status("REQ-does-not-exist")
        unroutable = await stranger.status("REQ\nwith a line break")
        others_disclosures = await stranger.disclosures(data["request_id"])
        own_list, strangers_list = (await client.list()).json(), (await stranger.list()).json()
        odd = signed(request_data(court, request_id="RG 26/0001 é?#"), court["private_key"])
        odd_accepted = await client.submit(odd)
        odd_read, odd_disclosures = await client.status(odd["request_id"]), await client.disclosures(odd["request_id"])

    assert accepted.status_code == 202 and first.status_code == 200
    assert first.json()["request_id"] == data["request_id"]
    assert refusals == {
        "unsigned": (401, "missing_signature"),
        "wrong key": (401, "bad_signature"),
        "revoked": (401, "revoked_authority"),
        "replayed": (401, "replayed_signature"),
        "stale": (401, "stale_signature"),
        "future": (401, "future_signature"),
        "changed body": (401, "digest_mismatch"),
        "digest not covered": (401, "missing_component"),
        "another's request": (403, "foreign_authority"),
        "request not signed by its authority": (422, "bad_request_signature"),
    }
    assert others_request.status_code == missing.status_code == others_disclosures.status_code == 404
    assert others_request.json() == missing.json() == others_disclosures.json() == unroutable.json()
    assert unroutable.status_code == 404
    assert data["request_id"] in [r["request_id"] for r in own_list["requests"]]
    assert strangers_list == {"requests": [], "next_cursor": None}
    # Any request id reads back: the signature covers the path as sent (percent-encoded), not as decoded.
    assert odd_accepted.status_code == 202 and odd_read.status_code == 200 and odd_disclosures.status_code == 200
    assert odd_read.json()["request_id"] == odd["request_id"] and odd_disclosures.json() == []


async def test_a_request_waiting_for_reviewers_shows_its_review_deadline(bootstrap, database_url):
    court = new_authority()
    await register_authority(bootstrap, court)
    data = signed(request_data(court, emergency=True, emergency_justification="Imminent threat to life"),
                  court["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)) as intake, \
            running("legal-review", service_settings(bootstrap, database_url)):
        for schema in ("intake", "legal_review"):
            await wait_for_authority(database_url, schema, court["authority_id"])
        client = client_of(intake, court)
        assert (await client.submit(data)).status_code == 202

        async def pending():
            answer = (await client.status(data["request_id"])).json()
            return answer if answer["status"] == "pending_review" else None
        history = (await until(pending, 60))["history"]
    [waiting] = [h for h in history if h["status"] == "pending_review"]
    assert datetime.fromisoformat(waiting["deadline"]) > datetime.fromisoformat(waiting["at"])
    assert all(h["deadline"] is None for h in history if h["status"] != "pending_review")
