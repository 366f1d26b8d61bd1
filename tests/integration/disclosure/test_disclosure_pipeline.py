"""Disclosure on the real broker and Postgres: store, package, seal, no_data, holds, notices."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import uuid
from datetime import date, datetime, timedelta, timezone

import asyncpg
from click.testing import CliRunner
from prometheus_client import REGISTRY

from warden.cli.main import cli
from warden.signing import generate_keypair

from tests.support.kafka import produce_event, read_topic, wait_for_events
from tests.support.requests import new_authority, register_authority, signed_approval
from tests.support.stack import running, service_settings
from tests.support.waiting import until

DECIDED = "legal.requests.decided"
APPROVED = "warden.legal.request.approved.v1"
SUBSCRIBERS = "platform.subscribers"
NOW = datetime.now(timezone.utc)
SUBSCRIBER_TABLES = {"accounts", "phone_changes", "username_changes", "identifier_holders", "sessions", "held_sessions"}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def new_phone() -> str:
    return "+3361" + "".join(random.choice("0123456789") for _ in range(7))


def new_ip() -> str:
    return f"198.51.100.{random.randrange(1, 255)}"


async def account(bootstrap: str, account_id: str, phone: str | None, at: datetime, username: str | None = None):
    await produce_event(bootstrap, SUBSCRIBERS, "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
        "updated_at": at.isoformat()})


async def session(bootstrap: str, account_id: str, ip: str, at: datetime):
    await produce_event(bootstrap, SUBSCRIBERS, "warden.subscriber.session.observed.v1",
                        {"account_id": account_id, "ip": ip, "observed_at": at.isoformat()})


async def approve(bootstrap: str, authority: dict, suspect: dict, **overrides) -> dict:
    """A signed approval of a signed request (tests/support/requests.py), published as legal review does."""
    overrides.setdefault("period", {"start": ago(30), "end": ago(1)})
    data = signed_approval(authority, suspect, **overrides)
    await produce_event(bootstrap, DECIDED, APPROVED, data, source="/warden/legal-review")
    return data


async def stored(database_url: str, account_id: str, sessions: int = 0) -> None:
    """The feed and the decisions come on different topics: wait until the feed is in."""
    conn = await asyncpg.connect(database_url)
    try:
        async def probe():
            return await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM disclosure.accounts WHERE account_id = $1)"
                " AND (SELECT count(*) FROM disclosure.sessions WHERE account_id = $1) >= $2", account_id, sessions)
        await until(probe)
    finally:
        await conn.close()


def of_case(case_id: str):
    return lambda e: e["data"].get("case_id") == case_id


async def test_approval_gives_one_sealed_package_only_the_authority_opens(
        bootstrap, database_url, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    platform = generate_keypair()
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", platform["private_key"])
    authority = new_authority()
    await register_authority(bootstrap, authority)
    suspect, other = f"acct-{uuid.uuid4().hex[:10]}", f"acct-{uuid.uuid4().hex[:10]}"
    old_phone, new_phone_, other_phone = new_phone(), new_phone(), new_phone()
    inside, outside, others_ip = new_ip(), "192.0.2.77", "192.0.2.88"
    await account(bootstrap, suspect, old_phone, ago(100), username="Dealer_" + suspect[-4:])
    await account(bootstrap, suspect, new_phone_, ago(10), username="Dealer_" + suspect[-4:])
    await account(bootstrap, other, other_phone, ago(100))
    for at in (ago(20), ago(5), ago(2)):
        await session(bootstrap, suspect, inside, at)
    await session(bootstrap, suspect, outside, ago(60))
    await session(bootstrap, other, others_ip, ago(5))

    latencies = REGISTRY.get_sample_value("warden_disclosure_approved_to_disclosed_seconds_count") or 0.0
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await stored(database_url, suspect, sessions=4)
        await stored(database_url, other, sessions=1)
        decision = await approve(bootstrap, authority, {"phone_number": new_phone_})
        case_id = decision["case_id"]
        [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(case_id))
        [notice] = await wait_for_events(bootstrap, "legal.notices.due", of_case(case_id))
        # Redelivered, as a new event for the same case: still one package.
        await produce_event(bootstrap, DECIDED, APPROVED, decision, source="/warden/legal-review")
        statuses = await wait_for_events(bootstrap, "legal.requests.status", of_case(case_id), settle=3.0)
        issued_all = await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(case_id))
        conn = await asyncpg.connect(database_url)
        try:
            packages = await conn.fetchval("SELECT count(*) FROM disclosure.packages WHERE case_id = $1", case_id)
            kept = await conn.fetchval("SELECT sealed FROM disclosure.packages WHERE case_id = $1", case_id)
            issued_here = await conn.fetchval("SELECT count(*) FROM disclosure.packages")  # earlier tests' too
            outside_store = await dump_outside_subscriber_store(conn)
        finally:
            await conn.close()

    assert len(issued_all) == 1 and packages == 1
    assert kept == base64.b64decode(issued["data"]["sealed"])  # the sealed box itself, as bytes
    # one approved-to-disclosed latency per package issued (the redelivery adds none; this fresh consumer
    # group also acts on the approvals earlier tests left on the topic, each a package of its own)
    observed = REGISTRY.get_sample_value("warden_disclosure_approved_to_disclosed_seconds_count") - latencies
    assert observed == issued_here >= 1
    assert [s["data"]["status"] for s in statuses] == ["disclosed"]
    assert notice["data"]["account_id"] == suspect
    data = issued["data"]
    assert data["account_id"] == suspect
    assert data["redacted"] == {"phone_numbers": [mask(old_phone), mask(new_phone_)], "ip_address_count": 1}

    secrets = [old_phone, new_phone_, other_phone, inside, outside, others_ip]
    on_topics = b""
    for topic in ("legal.disclosures.issued", "legal.requests.status", "legal.notices.due"):
        on_topics += b"".join(r.value or b"" for r in await read_topic(bootstrap, topic))
    assert not [s for s in secrets if s.encode() in on_topics]
    assert not [s for s in secrets if s in outside_store]
    logged = "\n".join(str(vars(r)) for r in caplog.records)
    assert "case_id" in logged and not [s for s in secrets if s in logged]

    event_file = tmp_path / "issued.json"
    event_file.write_text(json.dumps(issued))
    key_file = tmp_path / "authority.key"
    key_file.write_text(authority["private_key"])
    opened = CliRunner().invoke(cli, ["disclosure", "open", str(event_file), "--key", str(key_file),
                                      "--platform-key", platform["public_key"]])
    assert opened.exit_code == 0, opened.output
    package = json.loads(opened.output)
    assert package["account_id"] == suspect and package["case_id"] == case_id
    assert [p["phone_number"] for p in package["phone_numbers"]] == [old_phone, new_phone_]
    assert [(e["ip"], e["count"]) for e in package["ip_addresses"]] == [(inside, 3)]

    stranger = generate_keypair()["private_key"]
    refused = CliRunner().invoke(cli, ["disclosure", "open", str(event_file), "--key", stranger,
                                       "--platform-key", platform["public_key"]])
    assert refused.exit_code != 0 and "refused" in refused.output
    tampered = dict(issued, data=dict(data, sha256=("0" if data["sha256"][0] != "0" else "1") + data["sha256"][1:]))
    event_file.write_text(json.dumps(tampered))
    refused = CliRunner().invoke(cli, ["disclosure", "open", str(event_file), "--key", str(key_file),
                                       "--platform-key", platform["public_key"]])
    assert refused.exit_code != 0 and "sha256" in refused.output


def mask(number: str) -> str:
    return number[:3] + " ***"


async def dump_outside_subscriber_store(conn: asyncpg.Connection) -> str:
    # Partitions are read through their table (sessions).
    tables = [r["relname"] for r in await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'disclosure' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition")]
    parts = []
    for table in tables:
        if table in SUBSCRIBER_TABLES:
            continue
        parts += [r["t"] for r in await conn.fetch(f"SELECT t::text AS t FROM disclosure.{table} t")]
    parts += [bytes(v).decode() for v in await conn.fetchval("SELECT array_agg(value) FROM disclosure.outbox") or []]
    return "\n".join(parts)


async def test_unknown_suspect_gives_no_data_and_no_package(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    async with running("disclosure", service_settings(bootstrap, database_url)):
        decision = await approve(bootstrap, authority, {"account_id": f"acct-{uuid.uuid4().hex}"})
        [status] = await wait_for_events(bootstrap, "legal.requests.status", of_case(decision["case_id"]),
                                         settle=1.0)
    assert status["data"]["status"] == "no_data"
    assert status["data"]["reasons"][0]["code"] == "suspect_not_found"
    issued = [r for r in await read_topic(bootstrap, "legal.disclosures.issued")
              if decision["case_id"].encode() in (r.value or b"")]
    assert issued == []


# Live sessions and those retention kept aside for a hold.
STORED_SESSIONS = ("SELECT account_id, host(ip) AS ip FROM disclosure.sessions WHERE account_id = ANY($1::text[])"
                   " UNION ALL SELECT account_id, host(ip) FROM disclosure.held_sessions"
                   " WHERE account_id = ANY($1::text[])")


async def test_preservation_hold_keeps_old_sessions_from_retention(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_RETENTION_INTERVAL_S", "0.5")
    monkeypatch.setenv("WARDEN_RETENTION_DAYS", "365")
    authority = new_authority()
    await register_authority(bootstrap, authority)
    held, free = f"acct-{uuid.uuid4().hex[:10]}", f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, held, new_phone(), ago(800))
    await account(bootstrap, free, new_phone(), ago(800))
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await stored(database_url, held)
        await stored(database_url, free)
        decision = await approve(bootstrap, authority, {"account_id": held}, kind="preservation",
                                 period={"start": ago(800), "end": ago(0)}, hold_until=NOW + timedelta(days=90))
        [status] = await wait_for_events(bootstrap, "legal.requests.status", of_case(decision["case_id"]))
        assert status["data"]["status"] == "preserved"
        for who in (held, free):
            await session(bootstrap, who, "192.0.2.1", ago(400))   # past retention
            await session(bootstrap, who, "192.0.2.2", ago(10))    # within retention
        conn = await asyncpg.connect(database_url)
        try:
            async def purged_and_stored():
                rows = await conn.fetch(STORED_SESSIONS, [held, free])
                kept = {(r["account_id"], r["ip"]) for r in rows}
                # Wait until the recent sessions are in and the free account's old one is gone.
                return kept if {(held, "192.0.2.2"), (free, "192.0.2.2")} <= kept \
                    and (free, "192.0.2.1") not in kept else None
            kept = await until(purged_and_stored)
            await asyncio.sleep(1.5)  # a few more retention runs
            kept = {(r["account_id"], r["ip"]) for r in await conn.fetch(STORED_SESSIONS, [held, free])}
            holds = await conn.fetchval("SELECT count(*) FROM disclosure.holds WHERE account_id = $1", held)
        finally:
            await conn.close()
    assert holds == 1
    assert kept == {(held, "192.0.2.1"), (held, "192.0.2.2"), (free, "192.0.2.2")}


async def test_notice_waits_for_the_nondisclosure_date_and_survives_a_restart(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, new_phone(), ago(100))
    settings = service_settings(bootstrap, database_url)
    async with running("disclosure", settings):
        await stored(database_url, suspect)
        decision = await approve(bootstrap, authority, {"account_id": suspect},
                                 nondisclosure_until=date.today().isoformat())
        case_id = decision["case_id"]
        await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(case_id))
        await asyncio.sleep(1.5)
    assert not [r for r in await read_topic(bootstrap, "legal.notices.due") if case_id.encode() in (r.value or b"")]
    conn = await asyncpg.connect(database_url)
    try:
        due_at = await conn.fetchval("SELECT due_at FROM disclosure.notices WHERE case_id = $1", case_id)
        assert due_at > NOW  # the day after nondisclosure_until
        # Time passes while the service is down: the date has gone by when it comes back.
        await conn.execute("UPDATE disclosure.notices SET due_at = now() - interval '1 minute' WHERE case_id = $1",
                           case_id)
    finally:
        await conn.close()
    # Same consumer group: the restarted service resumes where it left off.
    async with running("disclosure", service_settings(bootstrap, database_url, group_prefix=settings.group_prefix)):
        [notice] = await wait_for_events(bootstrap, "legal.notices.due", of_case(case_id), settle=2.0)
    assert notice["data"]["account_id"] == suspect
