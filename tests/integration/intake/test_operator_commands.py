"""The operator's commands on the real broker and Postgres: a dead letter replayed once its cause is fixed is
handled once, however often it is replayed; the request's status history; redacted tails."""
from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from warden.cli.main import cli

from tests.support.kafka import produce_event, produce_raw, wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority

SUBMITTED = "warden.legal.request.submitted.v1"


async def warden(*args: str) -> str:
    """Run a `warden` command as an operator would (in a thread: it runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def received(request_id: str):
    return lambda e: e["data"]["request"]["request_id"] == request_id


async def settle_behind(bootstrap: str, authority: dict, database_url: str) -> None:
    """Wait until intake has handled everything before now on the authority's partition: a fresh request,
    on the same key so on the same partition, is received only after them."""
    sentinel = signed(request_data(authority), authority["private_key"])
    await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, sentinel)
    await wait_for_events(bootstrap, "legal.requests.received", received(sentinel["request_id"]))


async def test_a_request_for_an_unknown_authority_is_handled_once_after_registration_and_replay(
        bootstrap, database_url):
    authority = new_authority()
    data = signed(request_data(authority), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        original = await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, data)
        [letter] = await wait_for_records(bootstrap, "legal.requests.submitted.dlq",
                                          lambda r: data["request_id"].encode() in (r.value or b""))
        assert dict(letter.headers)["dlq.reason"] == b"unknown_authority"
        position = f"{letter.partition}:{letter.offset}"

        listed = [json.loads(line) for line in (await warden(
            "dlq", "list", "legal.requests.submitted", "--reason", "unknown_authority", "--since", "10m", "--json",
            "--bootstrap", bootstrap)).splitlines()]
        assert {"dlq_offset": letter.offset, "service": "intake", "reason": "unknown_authority"}.items() <= \
            next(entry for entry in listed if entry["dlq_partition"] == letter.partition
                 and entry["dlq_offset"] == letter.offset).items()

        await register_authority(bootstrap, authority)
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        dry = await warden("dlq", "replay", "legal.requests.submitted", "--letter", position, "--dry-run",
                           "--bootstrap", bootstrap)
        assert "would replay" in dry
        await settle_behind(bootstrap, authority, database_url)
        assert not [e for e in await wait_for_events(bootstrap, "legal.requests.received", lambda e: True, count=0)
                    if received(data["request_id"])(e)], "a dry run published nothing"

        out = await warden("dlq", "replay", "legal.requests.submitted", "--letter", position, "--by", "ops-on-call",
                           "--bootstrap", bootstrap)
        assert f"replayed legal.requests.submitted.dlq {position}" in out
        [case] = await wait_for_events(bootstrap, "legal.requests.received", received(data["request_id"]))

        # The same letter replayed again, and a copy of the original claiming to be another replay: no effect.
        await warden("dlq", "replay", "legal.requests.submitted", "--letter", position, "--bootstrap", bootstrap)
        forged_replay = [(k, v) for k, v in letter.headers if not k.startswith("dlq.")] + [
            ("replay.dlq_topic", b"legal.requests.submitted.dlq"), ("replay.dlq_partition", b"0"),
            ("replay.dlq_offset", b"999999")]
        await produce_raw(bootstrap, "legal.requests.submitted", letter.value, key=letter.key, headers=forged_replay)
        await settle_behind(bootstrap, authority, database_url)

    cases = await wait_for_events(bootstrap, "legal.requests.received", received(data["request_id"]), settle=0.5)
    assert [e["data"]["case_id"] for e in cases] == [case["data"]["case_id"]]
    replays = await wait_for_records(
        bootstrap, "legal.requests.submitted",
        lambda r: data["request_id"].encode() in (r.value or b"") and dict(r.headers).get("replay.by"), count=2)
    headers = dict(replays[0].headers)
    assert headers["replay.by"] == b"ops-on-call"
    assert headers["replay.dlq_topic"] == b"legal.requests.submitted.dlq"
    assert headers["replay.dlq_offset"] == str(letter.offset).encode() and "replay.at" in headers
    assert "dlq.reason" not in headers and replays[0].value == letter.value
    assert json.loads(replays[0].value)["id"] == original["id"]

    history = json.loads(await warden("request", "status", authority["authority_id"], data["request_id"], "--json",
                                      "--bootstrap", bootstrap))
    assert [(s["status"], [r["code"] for r in s["reasons"]]) for s in history["history"]] == [
        ("invalid", ["unknown_authority"]), ("received", [])]
    assert history["status"] == "received"
    readable = await warden("request", "status", authority["authority_id"], data["request_id"],
                            "--bootstrap", bootstrap)
    assert "unknown_authority" in readable and case["data"]["case_id"] in readable


async def test_tail_and_show_redact_personal_data_unless_asked(bootstrap, database_url):
    authority = new_authority()
    data = signed(request_data(authority, suspect={"account_id": "acct-77123", "phone_number": "+33612345678"},
                               offense={"category": "fraud", "statute": "Art. 313-1",
                                        "description": "Scam run from 203.0.113.9, calls from +44 20 7946 0958"}),
                  authority["private_key"])
    event = await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, data)
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_records(bootstrap, "legal.requests.submitted.dlq",
                               lambda r: data["request_id"].encode() in (r.value or b""))
    personal = ("acct-77123", "+33612345678", "203.0.113.9", "+44 20 7946 0958")

    tail = await warden("events", "tail", "legal.requests.submitted", "-n", "2000", "--json", "--bootstrap", bootstrap)
    [ours] = [json.loads(line) for line in tail.splitlines() if event["id"] in line]
    assert ours["event"]["data"]["suspect"] == {"account_id": "[redacted]", "phone_number": "[redacted]"}
    assert ours["event"]["data"]["request_id"] == data["request_id"]
    assert not [p for p in personal if p in tail]

    shown = await warden("dlq", "show", "legal.requests.submitted", "--reason", "unknown_authority",
                         "--bootstrap", bootstrap)
    assert data["request_id"] in shown and not [p for p in personal if p in shown]

    unredacted = await warden("events", "tail", "legal.requests.submitted", "-n", "2000", "--unredacted",
                              "--bootstrap", bootstrap)
    assert all(p in unredacted for p in personal)


async def test_mistakes_get_a_line_that_says_what_to_do(bootstrap):
    runner = CliRunner()
    unknown = await asyncio.to_thread(runner.invoke, cli, ["dlq", "list", "legal.nothing", "--bootstrap", bootstrap])
    assert unknown.exit_code == 2 and "topics that do: legal.requests.submitted" in unknown.output
    unreachable = await asyncio.to_thread(runner.invoke, cli, ["events", "tail", "legal.requests.status",
                                                               "--bootstrap", "127.0.0.1:9"])
    assert unreachable.exit_code == 1 and "cannot reach Kafka" in unreachable.output
    assert "Traceback" not in unknown.output + unreachable.output
    missing = await asyncio.to_thread(runner.invoke, cli, ["request", "status", "auth-none", "REQ-none",
                                                           "--bootstrap", bootstrap])
    assert missing.exit_code == 1 and "no status of request 'REQ-none'" in missing.output


async def test_a_letter_published_truncated_is_replayed_whole_from_the_database(bootstrap, database_url):
    from warden.runtime.dead_letters import DLQ_VALUE_LIMIT

    huge = b'{"specversion": "1.0", "data": "' + b"x" * (DLQ_VALUE_LIMIT + 4096) + b'"}'
    async with running("intake", service_settings(bootstrap, database_url)):
        metadata = await produce_raw(bootstrap, "legal.requests.submitted", huge, key=b"k",
                                     headers=[("origin", b"gateway-7")])
        [letter] = await wait_for_records(
            bootstrap, "legal.requests.submitted.dlq",
            lambda r: (dict(r.headers).get("dlq.offset"), dict(r.headers).get("dlq.partition")) == (
                str(metadata.offset).encode(), str(metadata.partition).encode()))
    assert len(letter.value) == DLQ_VALUE_LIMIT

    position = f"{letter.partition}:{letter.offset}"
    out = await warden("dlq", "replay", "legal.requests.submitted", "--letter", position, "--bootstrap", bootstrap,
                       "--database-url", database_url)
    assert f"replayed legal.requests.submitted.dlq {position}" in out
    [replayed] = await wait_for_records(
        bootstrap, "legal.requests.submitted",
        lambda r: dict(r.headers).get("replay.dlq_offset") == str(letter.offset).encode()
        and dict(r.headers).get("replay.dlq_topic") == b"legal.requests.submitted.dlq", timeout=60)
    assert replayed.value == huge and replayed.key == b"k" and replayed.partition == metadata.partition
    assert dict(replayed.headers)["origin"] == b"gateway-7"


async def test_tail_follows_new_events_until_interrupted(bootstrap):
    import signal
    import subprocess
    import sys

    # Ctrl-C as at a terminal: a suite started in the background (`make test &`) ignores SIGINT, and so would
    # the command, which inherits it.
    tail = subprocess.Popen([sys.executable, "-m", "warden.cli.main", "events", "tail", "legal.requests.status",
                             "-n", "0", "-f", "--json", "--bootstrap", bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = asyncio.create_task(asyncio.to_thread(tail.stdout.readline))
        status = {"request_id": "REQ-tail", "authority_id": "auth-tail", "status": "received",
                  "at": "2026-12-02T00:00:00+00:00"}
        for _ in range(100):  # until tail, started in parallel, has taken its position and sees the next one
            await produce_event(bootstrap, "legal.requests.status", "warden.legal.request.status.v1", status)
            done, _ = await asyncio.wait({first}, timeout=0.3)
            if done:
                break
        shown = json.loads(first.result())
        assert shown["event"]["type"] == "warden.legal.request.status.v1", shown
        assert shown["event"]["data"]["request_id"] == "REQ-tail" and shown["key"] == "auth-tail", shown
    finally:
        tail.send_signal(signal.SIGINT)
        _, errors = tail.communicate(timeout=30)
    assert tail.returncode == 0 and "Traceback" not in errors
