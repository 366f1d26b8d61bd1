"""The signed audit chain and its checkpoints, without a database (warden/audit.py)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from warden import audit
from warden.contract.events import AuditCheckpoint
from warden.keys import key_id
from warden.runtime.service import ConfigurationError

from tests.support import audit as dba
from tests.support.keys import AUDIT, pair

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SIGNER = audit.AuditSigner(AUDIT["private_key"])
FORGER_PRIVATE = pair("audit-forger")["private_key"]
FORGER = audit.AuditSigner(FORGER_PRIVATE)
KEYS = {SIGNER.key_id: SIGNER.public_key}
SERVICE, CHAIN_ID = "legal-review", "3f1d6f0e-6c53-4a51-9a8e-2f7e0c1b5a10"


def chain(n: int, signer: audit.AuditSigner = SIGNER, variant: int = 0, covered: set[int] = frozenset()
          ) -> list[audit.AuditEntry]:
    """Entries 1..n, each signed but those in `covered` (left to a later entry's signature)."""
    entries, prev = [], audit.GENESIS
    for seq in range(1, n + 1):
        entry = audit.AuditEntry(seq, f"case-{seq}", "case.opened", "policy", NOW + timedelta(seconds=seq),
                                 {"n": seq, "variant": variant}, prev)
        entry = dataclasses.replace(entry, hash=audit.entry_hash(entry), key_id=signer.key_id)
        if seq not in covered:
            entry = dataclasses.replace(entry, signature=signer.sign(
                audit.signed_entry_bytes(SERVICE, CHAIN_ID, seq, entry.hash)))
        entries.append(entry)
        prev = entry.hash
    return entries


def walk(checkpoint: AuditCheckpoint | None = None, keys=KEYS) -> audit.ChainWalk:
    return audit.ChainWalk(SERVICE, CHAIN_ID, keys, checkpoint)


def checkpoint(entries: list[audit.AuditEntry], seq: int, signer=SIGNER) -> AuditCheckpoint:
    return audit.sign_checkpoint(signer, SERVICE, CHAIN_ID, seq, entries[seq - 1].hash, NOW)


def test_a_signed_chain_reaching_its_checkpoint_verifies():
    entries = chain(5)
    assert audit.first_break(entries, walk(checkpoint(entries, 5))) == (5, None)
    assert audit.first_break(entries, walk(checkpoint(entries, 3))) == (5, None)  # later entries: signed is enough


def test_a_chain_short_of_its_checkpoint_is_truncated():
    entries = chain(5)
    count, broken = audit.first_break(entries[:2], walk(checkpoint(entries, 5)))
    assert count == 2 and broken.seq == 3 and "chain truncated" in broken.problem
    assert "entries 3..5 removed" in broken.problem
    assert audit.first_break([], walk(checkpoint(entries, 1)))[1].problem.startswith("chain truncated: it ends at entry 0")


def test_a_head_other_than_the_checkpoints_is_named():
    entries = chain(4)
    other = chain(4, variant=1)  # signed and chained, but not the chain the checkpoint saw
    cp = checkpoint(other, 3)
    broken = audit.first_break(entries, walk(cp))[1]
    assert broken.seq == 3 and "differs from the head the checkpoint" in broken.problem


def test_signatures_are_checked_against_configured_keys_only():
    entries = chain(3)
    assert "not a configured audit key" in audit.first_break(entries, walk(keys={}))[1].problem
    unsigned = [dataclasses.replace(e, signature=None, key_id=None) for e in entries]
    assert "not signed (written without the audit key)" in audit.first_break(unsigned, walk())[1].problem
    # Without keys (the link check alone) the chain still verifies.
    assert audit.first_break(unsigned) == (3, None)


def test_covered_entries_verify_through_the_signature_after_them():
    """A statement's entries before its last leave their signature to it: its hash chains back
    through theirs."""
    entries = chain(6, covered={1, 3, 4})
    assert audit.first_break(entries, walk()) == (6, None)
    assert audit.first_break(entries, walk(checkpoint(entries, 6))) == (6, None)
    # A covered entry names a key all the same: one not configured is a forgery.
    assert "not a configured audit key" in audit.first_break(chain(2, FORGER, covered={1}), walk())[1].problem


def test_a_rewritten_covered_entry_is_caught_by_the_signature_that_covers_it():
    entries = dba.rehashed(chain(6, covered={3, 4}), 4, {"actor": "mallory"})
    assert audit.first_break(entries)[1] is None  # the links alone: consistent
    count, broken = audit.first_break(entries, walk())
    assert count == 5 and broken.seq == 3
    assert "the signature of entry 5, which covers entries 3..5, does not match them" in broken.problem


def test_covered_entries_whose_signed_entry_was_removed_are_named():
    entries = chain(5, covered={3, 4})
    count, broken = audit.first_break(entries[:4], walk())
    assert count == 4 and broken.seq == 3
    assert "entries 3..4 wait for a signature that no entry after them carries" in broken.problem
    # A checkpoint of the covered head signs it as well as the entry removed would have.
    assert audit.first_break(entries[:4], walk(checkpoint(entries, 4))) == (4, None)
    # A signature stripped from the last entry leaves it covered by nothing.
    stripped = [*entries[:4], dataclasses.replace(entries[4], signature=None)]
    assert "entries 3..5 wait for a signature" in audit.first_break(stripped, walk())[1].problem


def test_a_signature_binds_the_entry_to_its_service_and_chain():
    entries = chain(2)
    assert audit.first_break(entries, audit.ChainWalk("disclosure", CHAIN_ID, KEYS))[1].seq == 1
    assert audit.first_break(entries, audit.ChainWalk(SERVICE, "another-chain", KEYS))[1].seq == 1


def test_rehashed_entry_keeps_its_links_but_not_its_signature():
    entries = chain(4)
    forged = dataclasses.replace(entries[1], actor="mallory")
    entries[1] = dataclasses.replace(forged, hash=audit.entry_hash(forged))
    entries[2] = dataclasses.replace(entries[2], prev_hash=entries[1].hash)
    entries[2] = dataclasses.replace(entries[2], hash=audit.entry_hash(entries[2]))
    assert audit.first_break(entries)[1].seq == 4  # the link check alone sees only the next, unrewritten, link
    broken = audit.first_break(entries, walk())[1]
    assert broken.seq == 2 and "signature does not match" in broken.problem


def test_checkpoints_verify_as_published_and_forgeries_are_told_apart():
    entries = chain(6)
    genuine = [checkpoint(entries, 2), checkpoint(entries, 5), checkpoint(entries, 4)]
    # As the relay publishes it and the CLI reads it back: JSON, then the model again.
    read_back = [AuditCheckpoint.model_validate_json(c.model_dump_json()) for c in genuine]
    assert all(audit.checkpoint_problem(c, KEYS) is None for c in read_back)
    forged = checkpoint(entries, 6, FORGER)
    claimed = forged.model_copy(update={"key_id": SIGNER.key_id})
    altered = genuine[1].model_copy(update={"seq": 6})
    other_chain = audit.sign_checkpoint(SIGNER, SERVICE, "another-chain", 9, entries[0].hash, NOW)
    anchor = audit.anchor_of([*read_back, forged, claimed, altered, other_chain], SERVICE, CHAIN_ID, KEYS)
    assert anchor.latest.seq == 5 and anchor.other_chains == ["another-chain"]
    assert [(c.seq, "not a configured" in p, "does not match" in p) for c, p in anchor.forged] == [
        (6, True, False), (6, False, True), (6, False, True)]


def test_parse_checkpoints_skips_other_events():
    cp = checkpoint(chain(1), 1)
    events = [{"type": audit.CHECKPOINT, "data": cp.model_dump(mode="json")},
              {"type": "warden.other.v1", "data": {}}, {"type": audit.CHECKPOINT, "data": {"seq": "x"}}, "junk"]
    assert audit.parse_checkpoints(events) == [cp]


def test_services_refuse_to_start_without_a_usable_audit_key():
    def check(**values):
        audit.require_audit_key(None, audit.AuditSettings(**values))
    with pytest.raises(ConfigurationError, match="WARDEN_AUDIT_PRIVATE_KEY is not set"):
        check(audit_private_key=None)
    with pytest.raises(ConfigurationError, match="not usable"):
        check(audit_private_key=SecretStr("bm90IGEga2V5"))
    with pytest.raises(ConfigurationError, match="is not among WARDEN_AUDIT_PUBLIC_KEYS"):
        check(audit_private_key=SecretStr(FORGER_PRIVATE), audit_public_keys=AUDIT["public_key"])
    check(audit_private_key=SecretStr(AUDIT["private_key"]),
          audit_public_keys=f"{pair('old-audit')['public_key']},{AUDIT['public_key']}")


def test_the_signer_names_its_key_as_warden_keys_does():
    assert SIGNER.key_id == key_id(AUDIT["public_key"])
    assert audit.current_signer().key_id == SIGNER.key_id  # tests/conftest.py installs the test audit key
