"""Disclosure's audit chain on the real broker and Postgres: what it records, the checkpoint that
goes out with each package, and `warden audit verify --service disclosure` catching a truncation."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg

from warden import audit

from tests.integration.disclosure.test_disclosure_pipeline import (
    NOW, account, ago, approve, new_phone, of_case, session, stored,
)
from tests.support import audit as dba
from tests.support.kafka import wait_for_events
from tests.support.requests import new_authority, register_authority
from tests.support.stack import running, service_settings
from tests.support.waiting import until

ACTIONS = {"package.issued", "hold.placed", "case.closed_without_data", "notice.emitted", "retention.purged"}


async def test_disclosure_audits_what_it_does_and_a_truncation_is_named(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_RETENTION_INTERVAL_S", "0.5")
    monkeypatch.setenv("WARDEN_NOTICE_INTERVAL_S", "0.5")
    monkeypatch.setenv("WARDEN_AUDIT_CHECKPOINT_INTERVAL_S", "0.5")
    authority = new_authority()
    await register_authority(bootstrap, authority)
    disclosed, held, purged = (f"acct-{uuid.uuid4().hex[:10]}" for _ in range(3))
    phone = new_phone()
    for who in (disclosed, held, purged):
        await account(bootstrap, who, phone if who == disclosed else new_phone(), ago(100))
    await session(bootstrap, disclosed, "198.51.100.7", ago(5))
    await session(bootstrap, purged, "192.0.2.9", ago(400))  # past retention: purged
    settings = service_settings(bootstrap, database_url)
    async with running("disclosure", settings):
        for who in (disclosed, held):
            await stored(database_url, who)
        package = await approve(bootstrap, authority, {"phone_number": phone},
                                nondisclosure_until=(NOW + timedelta(days=30)).date().isoformat())
        hold = await approve(bootstrap, authority, {"account_id": held}, kind="preservation",
                             hold_until=NOW + timedelta(days=90))
        none = await approve(bootstrap, authority, {"account_id": f"acct-{uuid.uuid4().hex}"})
        for decision in (package, hold, none):
            await wait_for_events(bootstrap, "legal.requests.status", of_case(decision["case_id"]))
        conn = await asyncpg.connect(database_url)
        try:
            # The nondisclosure date passes: the notice job emits the notice, and audits it.
            await conn.execute("UPDATE disclosure.notices SET due_at = now() - interval '1 second'"
                               " WHERE case_id = $1", package["case_id"])
            await wait_for_events(bootstrap, "legal.notices.due", of_case(package["case_id"]))

            async def all_recorded():
                actions = {r["action"] for r in await conn.fetch("SELECT action FROM disclosure.audit_log")}
                return actions >= ACTIONS
            await until(all_recorded)
            entries = await dba.entries(conn, "disclosure")
            chain_id = await audit.chain_id_of(conn, "disclosure")
        finally:
            await conn.close()
        last = await dba.anchored(bootstrap, database_url, "disclosure", "disclosure")

    actions = {(e.case_id, e.action): e for e in entries}
    issued = actions[package["case_id"], "package.issued"]
    assert issued.detail["sha256"] and issued.detail["notice_emitted"] is False
    assert actions[package["case_id"], "notice.emitted"].seq > issued.seq
    assert actions[hold["case_id"], "hold.placed"].detail["hold_until"]
    assert actions[none["case_id"], "case.closed_without_data"].detail["reason"] == "suspect_not_found"
    purge = next(e for e in entries if e.action == "retention.purged")
    assert purge.case_id is None and purge.detail["sessions"] >= 1
    # No personal data in the entries: no phone number, no IP address, no account id.
    assert not any(text in str(e.detail) for e in entries for text in (phone, "192.0.2.9", "198.51.100.7", held))
    # The package's checkpoint went out with it: the head its transaction reached, at or past its entry.
    by_seq = {e.seq: e for e in entries}
    checkpoints = [c for c in await dba.checkpoints(bootstrap) if c.chain_id == chain_id]
    assert any(c.seq >= issued.seq and c.head == by_seq[c.seq].hash and c.seq < actions[
        package["case_id"], "notice.emitted"].seq for c in checkpoints)

    intact = await asyncio.to_thread(dba.verify, bootstrap, database_url, "disclosure")
    assert intact.exit_code == 0, intact.output
    assert f"disclosure: audit chain intact: {last} entries verified, up to the checkpoint of entry {last}" \
        in intact.output

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM disclosure.audit_log WHERE seq = $1", last)
    finally:
        await conn.close()
    truncated = await asyncio.to_thread(dba.verify, bootstrap, database_url, "disclosure")
    assert truncated.exit_code == 1
    assert (f"disclosure: audit chain BROKEN at entry {last}: chain truncated: it ends at entry {last - 1}"
            in truncated.output)
