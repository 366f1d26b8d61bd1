"""The newcomer's path: `warden up`, register an authority, submit requests with the CLI."""
from __future__ import annotations

import asyncio
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
