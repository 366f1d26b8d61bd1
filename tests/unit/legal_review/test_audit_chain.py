"""The audit chain's integrity check, without a database."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from legal_review.audit import GENESIS, AuditEntry, entry_hash, first_break

from tests.unit.legal_review.support import NOW


def chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        entry = AuditEntry(seq, f"case-{seq}", "case.opened", "policy", NOW + timedelta(seconds=seq),
                           {"status": "pending_review", "n": seq}, prev)
        entry = dataclasses.replace(entry, hash=entry_hash(entry))
        entries.append(entry)
        prev = entry.hash
    return entries


def test_intact_chain_verifies():
    assert first_break(chain(5)) == (5, None)


def test_altered_entry_is_named():
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], detail={"status": "approved", "n": 3})
    count, broken = first_break(entries)
    assert broken.seq == 3 and "altered" in broken.problem


def test_removed_entry_is_named():
    entries = chain(5)
    del entries[1]
    assert first_break(entries)[1].seq == 3


def test_rehashed_entry_breaks_the_next_link():
    entries = chain(5)
    forged = dataclasses.replace(entries[1], actor="mallory")
    entries[1] = dataclasses.replace(forged, hash=entry_hash(forged))
    broken = first_break(entries)[1]
    assert broken.seq == 3 and "prev_hash" in broken.problem


def test_hash_depends_on_every_field():
    entry = chain(1)[0]
    for change in ({"seq": 2}, {"case_id": "x"}, {"action": "x"}, {"actor": "x"}, {"at": NOW},
                   {"detail": {}}, {"prev_hash": "1" * 64}):
        assert entry_hash(dataclasses.replace(entry, **change)) != entry.hash, change
