"""Who works on a case: a reviewer's hold on it (claim, release) and reviewers' internal notes.

Functions run in the caller's transaction (decide.py's units of work). Whether a reviewer may act on a
held case is decided in review.py (may_act_on_held).
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

import asyncpg

from legal_review import audit
from legal_review.review import Hold


async def claim(conn: asyncpg.Connection, case_id: str, reviewer: str, at: datetime, minutes: float) -> Hold:
    """Take the case (or extend one's own hold); a hold that ran out passes on. Returns the hold as it stands:
    its holder may be someone else."""
    row = await conn.fetchrow(
        """INSERT INTO case_claims (case_id, reviewer, claimed_at, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (case_id) DO UPDATE SET reviewer = EXCLUDED.reviewer,
               claimed_at = CASE WHEN case_claims.reviewer = EXCLUDED.reviewer THEN case_claims.claimed_at
                                 ELSE EXCLUDED.claimed_at END, expires_at = EXCLUDED.expires_at
             WHERE case_claims.reviewer = EXCLUDED.reviewer OR case_claims.expires_at <= $3
           RETURNING reviewer, claimed_at, expires_at""",
        case_id, reviewer, at, at + timedelta(minutes=minutes))
    if row is None:
        row = await conn.fetchrow("SELECT reviewer, claimed_at, expires_at FROM case_claims WHERE case_id = $1",
                                  case_id)
    return Hold(row["reviewer"], row["claimed_at"], row["expires_at"])


async def release(conn: asyncpg.Connection, case_id: str, reviewer: str) -> bool:
    """End the reviewer's own hold; False when they held none."""
    return await conn.fetchval("DELETE FROM case_claims WHERE case_id = $1 AND reviewer = $2 RETURNING true",
                               case_id, reviewer) or False


async def holder(conn: asyncpg.Connection, case_id: str, at: datetime) -> Hold | None:
    row = await conn.fetchrow("SELECT reviewer, claimed_at, expires_at FROM case_claims"
                              " WHERE case_id = $1 AND expires_at > $2", case_id, at)
    return Hold(row["reviewer"], row["claimed_at"], row["expires_at"]) if row else None


async def holders(conn: asyncpg.Connection, case_ids: list[str], at: datetime) -> dict[str, Hold]:
    rows = await conn.fetch("SELECT case_id, reviewer, claimed_at, expires_at FROM case_claims"
                            " WHERE case_id = ANY($1::uuid[]) AND expires_at > $2", case_ids, at)
    return {str(r["case_id"]): Hold(r["reviewer"], r["claimed_at"], r["expires_at"]) for r in rows}


def note_digest(note: str) -> str:
    return hashlib.sha256(note.encode()).hexdigest()


async def add_note(conn: asyncpg.Connection, case_id: str, author: str, note: str, at: datetime,
                   chain: audit.Chain | None = None) -> str:
    """Keep an internal note; the audit chain records it by digest (the text stays in case_notes: the chain
    proves the note was written then, by them, and unchanged since, without carrying reviewers' working
    thoughts into every copy of the chain)."""
    note_id = str(uuid.uuid4())
    await conn.execute("INSERT INTO case_notes (note_id, case_id, author, note, at) VALUES ($1, $2, $3, $4, $5)",
                       note_id, case_id, author, note, at)
    await audit.append(conn, case_id, "case.note_added", author, at,
                       {"note_id": note_id, "sha256": note_digest(note)}, chain)
    return note_id


async def notes_of(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT note_id, author, note, at FROM case_notes WHERE case_id = $1 ORDER BY at, note_id",
                            case_id)
