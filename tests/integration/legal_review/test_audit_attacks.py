"""A database administrator against legal review's audit chain: each attack is named by
`warden audit verify`, which holds the chain to its latest checkpoint on Kafka."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import asyncpg
import pytest
from click.testing import CliRunner

from warden import audit
from warden.cli.main import cli
from warden.keys import key_id

from tests.integration.legal_review.support import publish_received, received, registered, status_of
from tests.support import audit as dba
from tests.support.keys import AUDIT, pair
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings

SERVICE, SCHEMA = "legal-review", "legal_review"
FORGER = audit.AuditSigner(pair("audit-forger")["private_key"])


async def decided_cases(bootstrap: str, database_url: str) -> int:
    """Four cases decided by legal review (eight entries), the chain anchored: its last seq."""
    court = new_authority("court", "FR")
    events = [(received(court), "approved"), (received(court, instrument={"type": "subpoena"}), "rejected"),
              (received(court), "approved"), (received(court, instrument={"type": "subpoena"}), "rejected")]
    async with running(SERVICE, service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        for event, _ in events:
            await publish_received(bootstrap, event)
        for event, status in events:
            await status_of(bootstrap, event["case_id"], status)
        return await dba.anchored(bootstrap, database_url, SERVICE, SCHEMA)


@pytest.fixture
def chain(bootstrap, database_url) -> int:
    last = asyncio.run(decided_cases(bootstrap, database_url))
    intact = dba.verify(bootstrap, database_url, SERVICE)
    assert intact.exit_code == 0, intact.output
    chain_id = as_dba(database_url, lambda c: audit.chain_id_of(c, SCHEMA))
    assert f"legal-review: audit chain intact: {last} entries verified, up to the checkpoint of entry {last} (" \
        in intact.output
    assert intact.output.rstrip().endswith(f"; chain {chain_id}")
    pinned = CliRunner().invoke(cli, ["audit", "verify", "--chain-id", f"legal-review={chain_id}", "--database-url",
                                      database_url, "--bootstrap", bootstrap])
    assert pinned.exit_code == 0, pinned.output
    return last


def as_dba(database_url: str, work):
    async def run():
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()
    return asyncio.run(run())


def test_deleting_the_last_entries_is_named_as_truncation(bootstrap, database_url, chain):
    as_dba(database_url, lambda c: c.execute("DELETE FROM legal_review.audit_log WHERE seq > $1", chain - 3))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"audit chain BROKEN at entry {chain - 2}: chain truncated: it ends at entry {chain - 3}, the "
            f"checkpoint of ") in result.output
    assert f"reaches entry {chain} (entries {chain - 2}..{chain} removed)" in result.output


def test_deleting_an_entry_in_the_middle_is_named(bootstrap, database_url, chain):
    case_id = as_dba(database_url, lambda c: c.fetchval(
        "SELECT case_id::text FROM legal_review.audit_log WHERE seq = 4"))
    as_dba(database_url, lambda c: c.execute("DELETE FROM legal_review.audit_log WHERE seq = 3"))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"audit chain BROKEN at entry 4 (case {case_id}): sequence gap: expected entry 3, found 4 "
            "(entries removed)") in result.output


def rewrite_entry(database_url: str, pick) -> audit.AuditEntry:
    """The entry `pick` chooses rewritten with the outcome "approved", every later hash recomputed."""
    async def rewrite(conn):
        entries = await dba.entries(conn, SCHEMA)
        target = next(e for e in entries if pick(e))
        forged = dba.rehashed(entries, target.seq, {"detail": {**target.detail, "outcome": "approved"}})
        await dba.store(conn, SCHEMA, forged)
        return target
    return as_dba(database_url, rewrite)


def test_a_rewritten_entry_with_hashes_recomputed_fails_its_signature(bootstrap, database_url, chain):
    rejected = rewrite_entry(database_url, lambda e: e.action == "case.decided" and e.detail["outcome"] == "rejected")
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    # The case was opened and decided in one statement: the decided entry's signature covers both.
    assert (f"audit chain BROKEN at entry {rejected.seq - 1} (case {rejected.case_id}): the signature of entry "
            f"{rejected.seq}, which covers entries {rejected.seq - 1}..{rejected.seq}, does not match them (one of "
            "them rewritten and the hashes recomputed)") in result.output


def test_a_rewritten_entry_that_a_later_signature_covers_is_caught_by_it(bootstrap, database_url, chain):
    """A machine's case is opened and decided in one statement: the opened entry carries the key's id
    and no signature of its own; the decided entry's covers it."""
    entries = [e for e in as_dba(database_url, lambda c: dba.entries(c, SCHEMA)) if e.seq > chain - 8]
    opened = [e for e in entries if e.action == "case.opened"]  # the fixture's four cases
    assert len(opened) == 4 and all(e.key_id == key_id(AUDIT["public_key"]) and e.signature is None for e in opened)
    assert all(e.signature for e in entries if e.action == "case.decided")
    first = rewrite_entry(database_url, lambda e: e.seq > chain - 8 and e.action == "case.opened")
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"audit chain BROKEN at entry {first.seq} (case {first.case_id}): the signature of entry "
            f"{first.seq + 1}, which covers entries {first.seq}..{first.seq + 1}, does not match them") in result.output


def test_a_chain_rewritten_and_signed_with_a_forgers_key_is_named(bootstrap, database_url, chain):
    async def rewrite(conn, claimed_key_id=None):
        chain_id = await audit.chain_id_of(conn, SCHEMA)
        entries = await dba.entries(conn, SCHEMA)
        forged = dba.rehashed(entries, 1, {"actor": "mallory"})
        await dba.store(conn, SCHEMA, dba.resigned(forged, FORGER, SERVICE, chain_id, claimed_key_id))
        return entries[0]
    first = as_dba(database_url, rewrite)
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"audit chain BROKEN at entry 1 (case {first.case_id}): signed by key {FORGER.key_id}, which is not "
            "a configured audit key (WARDEN_AUDIT_PUBLIC_KEYS): entry forged") in result.output

    # The same rewrite claiming the genuine key's id: the signatures do not verify with it.
    as_dba(database_url, lambda c: rewrite(c, key_id(AUDIT["public_key"])))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert f"audit chain BROKEN at entry 1 (case {first.case_id}): signature does not match" in result.output


def test_a_forged_checkpoint_is_named(bootstrap, database_url, chain):
    chain_id = as_dba(database_url, lambda c: audit.chain_id_of(c, SCHEMA))
    # A checkpoint far ahead, signed by a forger, and one claiming the genuine key's id.
    ahead = audit.sign_checkpoint(FORGER, SERVICE, chain_id, chain + 5, uuid.uuid4().hex * 2,
                                  datetime.now(timezone.utc))
    claimed = audit.sign_checkpoint(FORGER, SERVICE, chain_id, chain + 7, uuid.uuid4().hex * 2,
                                    datetime.now(timezone.utc))
    claimed = claimed.model_copy(update={"key_id": key_id(AUDIT["public_key"])})
    asyncio.run(dba.publish_checkpoint(bootstrap, ahead))
    asyncio.run(dba.publish_checkpoint(bootstrap, claimed))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"audit chain BROKEN: forged checkpoint on legal.audit.checkpoints (claims entry {chain + 5}, "
            f"{ahead.at.isoformat(timespec='seconds')}): signed by key {FORGER.key_id}, which is not a configured "
            "audit key: checkpoint forged") in result.output
    assert (f"(claims entry {chain + 7}, {claimed.at.isoformat(timespec='seconds')}): signature does not match "
            "the checkpoint: checkpoint forged") in result.output
    # The chain itself is still held to the genuine checkpoint.
    assert f"audit chain intact: {chain} entries verified, up to the checkpoint of entry {chain}" in result.output


def test_entries_signed_later_than_the_checkpoint_need_only_verify(bootstrap, database_url, chain):
    """Entries past the latest checkpoint are held to their signatures and links, not to a checkpoint."""
    async def append(conn):
        async with conn.transaction():
            await conn.execute("SET LOCAL search_path TO legal_review")
            from legal_review.audit import append as append_entry
            await append_entry(conn, None, "test.note", "tester", datetime.now(timezone.utc), {"n": 1})
    as_dba(database_url, append)
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 0, result.output
    assert f"intact: {chain + 1} entries verified, up to the checkpoint of entry {chain}" in result.output
    # Its signature removed, nothing after it signs it.
    as_dba(database_url, lambda c: c.execute(
        "UPDATE legal_review.audit_log SET signature = NULL WHERE seq = $1", chain + 1))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert (f"BROKEN at entry {chain + 1}: entries {chain + 1}..{chain + 1} wait for a signature that no entry "
            "after them carries") in result.output
    # Written without the audit key, it is unsigned.
    as_dba(database_url, lambda c: c.execute(
        "UPDATE legal_review.audit_log SET key_id = NULL WHERE seq = $1", chain + 1))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert f"BROKEN at entry {chain + 1}: entry is not signed" in result.output




def test_a_chain_replaced_under_a_new_id_is_named(bootstrap, database_url, chain):
    recorded = as_dba(database_url, lambda c: audit.chain_id_of(c, SCHEMA))
    as_dba(database_url, lambda c: c.execute(
        "DELETE FROM legal_review.audit_log; UPDATE legal_review.audit_chain SET chain_id = gen_random_uuid()"))
    result = dba.verify(bootstrap, database_url, SERVICE)
    assert result.exit_code == 1
    assert "is empty and was never checkpointed, while legal-review published checkpoints of chain" in result.output
    assert "the chain was replaced" in result.output

    # Once the service has appended to the new chain, its own checkpoints anchor it: the chain id the
    # deployment recorded (verify prints it) is what tells the replacement.
    async def append_and_checkpoint(conn):
        async with conn.transaction():
            await conn.execute("SET LOCAL search_path TO legal_review")
            from legal_review.audit import Chain
            chain = Chain()
            await audit.append(conn, chain, None, "test.note", "mallory", datetime.now(timezone.utc), {})
            return chain.checkpoint()
    asyncio.run(dba.publish_checkpoint(bootstrap, as_dba(database_url, append_and_checkpoint)))
    replaced = as_dba(database_url, lambda c: audit.chain_id_of(c, SCHEMA))
    assert dba.verify(bootstrap, database_url, SERVICE).exit_code == 0
    pinned = CliRunner().invoke(cli, ["audit", "verify", "--chain-id", f"legal-review={recorded}",
                                      "--database-url", database_url, "--bootstrap", bootstrap])
    assert pinned.exit_code == 1
    assert (f"legal-review: audit chain BROKEN: the database holds chain {replaced}, not {recorded}: "
            "the chain was replaced") in pinned.output
