"""The newcomer's path: `warden up`, register an authority, submit requests with the CLI."""
from __future__ import annotations

import asyncio
import time
import json

import psutil
import pytest

from tests.support.kafka import read_topic
from tests.support.requests import request_data
from tests.support.stack import wait_for_authority
from tests.support.warden_up import WardenUp


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    up = WardenUp(tmp_path_factory.mktemp("warden-up"))
    info = up.start()
    yield up, info
    up.stop()


def events(bootstrap: str, topic: str) -> list[dict]:
    out = []
    for record in asyncio.run(read_topic(bootstrap, topic)):
        try:
            out.append(json.loads(record.value))
        except ValueError:
            out.append({"raw": record.value, "headers": dict(record.headers)})
    return out


def wait_until(probe, timeout: float = 30):
    import time
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_submitted_request_reaches_received_and_forged_one_only_the_dlq(stack):
    up, info = stack
    bootstrap = info["kafka_bootstrap_servers"]
    assert set(info["services"]) >= {"intake"}
    keys = json.loads(up.warden("keygen").stdout)
    forger = json.loads(up.warden("keygen").stdout)
    (up.workdir / "court.key").write_text(json.dumps(keys))
    (up.workdir / "forger.key").write_text(forger["private_key"])
    up.warden("authority", "add", "fr-tj-paris", "--country", "FR", "--kind", "court",
              "--public-key", keys["public_key"], "--name", "Tribunal judiciaire de Paris")
    listed = json.loads(up.warden("authority", "list", "--json").stdout)
    assert [a["authority_id"] for a in listed if a["status"] == "active"] == ["fr-tj-paris"]
    # the registry projection is asynchronous, as in production: submit once intake knows the court
    asyncio.run(wait_for_authority(info["database_url"], "intake", "fr-tj-paris"))

    authority = {"authority_id": "fr-tj-paris"}
    good = request_data(authority)
    forged = request_data(authority)
    (up.workdir / "good.json").write_text(json.dumps(good))
    (up.workdir / "forged.json").write_text(json.dumps(forged))
    up.warden("submit", "good.json", "--key", "court.key")
    up.warden("submit", "forged.json", "--key", "forger.key")

    received = wait_until(lambda: [e for e in events(bootstrap, "legal.requests.received")
                                   if e["data"]["request"]["request_id"] == good["request_id"]])
    assert received[0]["data"]["request"]["suspect"]["phone_number"] == "+33612345678"
    statuses = wait_until(lambda: [e["data"] for e in events(bootstrap, "legal.requests.status")
                                   if e.get("data", {}).get("request_id") == forged["request_id"]])
    assert statuses[0]["status"] == "invalid" and statuses[0]["reasons"][0]["code"] == "bad_signature"
    dead = [e for e in events(bootstrap, "legal.requests.submitted.dlq")
            if e.get("data", {}).get("request_id") == forged["request_id"]]
    assert len(dead) == 1
    assert not [e for e in events(bootstrap, "legal.requests.received")
                if e["data"]["request"]["request_id"] == forged["request_id"]]
    logs = "".join(p.read_text() for p in (up.home / "logs").glob("*.log"))
    assert "request received" in logs  # the logs do say what happened...
    for personal in ("+33612345678", "+33 6 12 34 56 78", "dealer_42", "Dealer_42"):
        assert personal not in logs  # ...without personal data


def test_cli_errors_say_what_to_do(stack):
    up, _ = stack
    missing = up.warden("submit", "nope.json", "--key", "court.key", check=False)
    assert missing.returncode != 0 and "cannot read nope.json" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_key = up.warden("authority", "add", "x", "--country", "FR", "--kind", "court",
                        "--public-key", "abc", check=False)
    assert bad_key.returncode != 0 and "warden keygen" in bad_key.stderr
    unknown = up.warden("authority", "revoke", "no-such-authority", check=False)
    assert unknown.returncode != 0 and "warden authority list" in unknown.stderr


def test_ctrl_c_stops_everything(tmp_path):
    up = WardenUp(tmp_path)
    info = up.start()
    pids = [s["pid"] for s in info["services"].values()]
    assert up.stop() == 0
    assert not (up.home / "stack.json").exists()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert "stopped" in up.log.read_text()


def test_approved_request_ends_in_a_sealed_package_only_the_court_can_open(stack):
    """submit → intake → legal review (auto-approved) → disclosure → `warden disclosure open`."""
    from datetime import datetime, timedelta, timezone

    from tests.support.kafka import produce_event

    up, info = stack
    bootstrap = info["kafka_bootstrap_servers"]
    keys = json.loads(up.warden("keygen").stdout)
    (up.workdir / "lyon.key").write_text(json.dumps(keys))
    up.warden("authority", "add", "fr-tj-lyon", "--country", "FR", "--kind", "court",
              "--public-key", keys["public_key"])
    for schema in ("intake", "legal_review", "disclosure"):
        asyncio.run(wait_for_authority(info["database_url"], schema, "fr-tj-lyon"))

    now = datetime.now(timezone.utc)
    account = f"acct-{now.timestamp():.0f}"
    username, phone = f"seller_{now.timestamp():.0f}", "+33698765432"

    async def feed() -> None:
        await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
            "account_id": account, "username": username, "phone_number": phone, "country": "FR",
            "updated_at": (now - timedelta(days=200)).isoformat()})
        for days, ip in ((30, "203.0.113.7"), (20, "203.0.113.7"), (10, "198.51.100.23"), (400, "192.0.2.99")):
            await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
                "account_id": account, "ip": ip, "observed_at": (now - timedelta(days=days)).isoformat()})

    asyncio.run(feed())
    time.sleep(3)  # the subscriber feed is asynchronous too
    request = request_data({"authority_id": "fr-tj-lyon"}, suspect={"username": "@" + username.upper()})
    (up.workdir / "lyon-request.json").write_text(json.dumps(request))
    up.warden("submit", "lyon-request.json", "--key", "lyon.key")

    issued = wait_until(lambda: [e for e in events(bootstrap, "legal.disclosures.issued")
                                 if e["data"]["request_id"] == request["request_id"]], timeout=60)
    assert len(issued) == 1
    data = issued[0]["data"]
    assert data["redacted"] == {"phone_numbers": ["+33 ***"], "ip_address_count": 2}
    assert phone not in json.dumps(issued[0]) and "203.0.113.7" not in json.dumps(issued[0])
    statuses = [e["data"]["status"] for e in events(bootstrap, "legal.requests.status")
                if e.get("data", {}).get("request_id") == request["request_id"]]
    assert statuses == ["received", "approved", "disclosed"]

    (up.workdir / "issued.json").write_text(json.dumps(issued[0]))
    (up.workdir / "platform.pub").write_text(up.warden("disclosure", "platform-key").stdout.strip())
    opened = up.warden("disclosure", "open", "issued.json", "--key", "lyon.key", "--platform-key", "platform.pub")
    package = json.loads(opened.stdout)
    assert package["account_id"] == account
    assert {ip["ip"] for ip in package["ip_addresses"]} == {"203.0.113.7", "198.51.100.23"}  # not the 400-day-old one
    assert [p["phone_number"] for p in package["phone_numbers"]] == [phone]
    stranger = json.loads(up.warden("keygen").stdout)
    (up.workdir / "stranger.key").write_text(json.dumps(stranger))
    refused = up.warden("disclosure", "open", "issued.json", "--key", "stranger.key",
                        "--platform-key", "platform.pub", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_development_tokens_open_the_review_and_moderation_apis(stack):
    import urllib.error
    import urllib.request

    up, info = stack
    stack_file = up.home / "stack.json"
    assert stack_file.stat().st_mode & 0o077 == 0  # tokens are for the operator only
    tokens = json.loads(stack_file.read_text())["development_tokens"]
    reviewer = next(t for t, v in tokens["legal-review"].items() if v["role"] == "reviewer")
    moderator = next(iter(tokens["moderation"]))

    def get(url: str, token: str | None) -> int:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    review_url = info["services"]["legal-review"]["url"] + "/review/cases"
    queue_url = info["services"]["moderation"]["url"] + "/moderation/queue"
    assert get(review_url, reviewer) == 200
    assert get(review_url, None) == 401
    assert get(queue_url, moderator) == 200
    assert get(queue_url, reviewer) == 401


def test_the_readme_walk_through_over_the_authority_api(stack):
    """README: `warden authority-client` against `warden up`: submit, a reviewer's question, the answer,
    withdrawal; and a request disclosed, fetched with its certificate, too late to withdraw."""
    import urllib.request
    from datetime import datetime, timedelta, timezone

    from tests.support.kafka import produce_event

    up, info = stack
    bootstrap = info["kafka_bootstrap_servers"]
    keys = json.loads(up.warden("keygen").stdout)
    (up.workdir / "nantes.json").write_text(json.dumps(keys))
    up.warden("authority", "add", "fr-tj-nantes", "--country", "FR", "--kind", "court",
              "--public-key", keys["public_key"])
    for schema in ("intake", "legal_review", "disclosure"):
        asyncio.run(wait_for_authority(info["database_url"], schema, "fr-tj-nantes"))
    client = ["authority-client", "--authority", "fr-tj-nantes", "--key", "nantes.json"]

    def status(request_id: str) -> dict:
        return json.loads(up.warden(client[0], "--json", *client[1:], "status", request_id).stdout)

    speech = request_data({"authority_id": "fr-tj-nantes"}, offense={
        "category": "extremism_speech", "statute": "Art. 421-2-5", "description": "Channel posts"})
    (up.workdir / "speech.json").write_text(json.dumps(speech))
    up.warden(*client, "submit", "speech.json")
    case_id = wait_until(lambda: status(speech["request_id"])["status"] == "pending_review"
                         and status(speech["request_id"])["case_id"], timeout=60)
    tokens = json.loads((up.home / "stack.json").read_text())["development_tokens"]["legal-review"]
    reviewer = next(t for t, v in tokens.items() if v["role"] == "reviewer")
    question = "Which posts are the suspect's own?"
    asked = urllib.request.Request(
        info["services"]["legal-review"]["url"] + f"/review/cases/{case_id}/clarifications",
        data=json.dumps({"question": question}).encode(), method="POST",
        headers={"Authorization": f"Bearer {reviewer}", "Content-Type": "application/json"})
    with urllib.request.urlopen(asked, timeout=10) as response:
        assert response.status == 201
    wait_until(lambda: status(speech["request_id"])["status"] == "needs_clarification")
    shown = up.warden(*client, "status", speech["request_id"]).stdout
    assert question in shown and "authority-client answer" in shown
    up.warden(*client, "answer", speech["request_id"], "The posts of 3 and 5 March.", "--categories", "ip_addresses")
    wait_until(lambda: status(speech["request_id"])["status"] == "pending_review")
    up.warden(*client, "withdraw", speech["request_id"], "--reason", "investigation closed")
    wait_until(lambda: status(speech["request_id"])["status"] == "withdrawn")

    now = datetime.now(timezone.utc)
    account, username = f"acct-n{now.timestamp():.0f}", f"vendor_{now.timestamp():.0f}"
    asyncio.run(produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account, "ip": "203.0.113.50", "observed_at": (now - timedelta(days=4)).isoformat()}))
    asyncio.run(produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account, "username": username, "phone_number": None, "country": "FR",
        "updated_at": (now - timedelta(days=100)).isoformat()}))
    time.sleep(3)  # the subscriber feed is asynchronous too
    order = request_data({"authority_id": "fr-tj-nantes"}, suspect={"username": "@" + username})
    (up.workdir / "order.json").write_text(json.dumps(order))
    up.warden(*client, "submit", "order.json")
    wait_until(lambda: status(order["request_id"])["status"] == "disclosed", timeout=60)
    fetched = up.warden(*client, "fetch", order["request_id"]).stdout
    late = up.warden(*client, "withdraw", order["request_id"], check=False)

    assert "Certificate of authenticity" in fetched and order["instrument"]["reference"] in fetched
    assert account in fetched and "203.0.113.50" in fetched
    assert late.returncode != 0 and "409 package_built" in late.stderr
