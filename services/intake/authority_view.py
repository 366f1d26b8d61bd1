"""What each authority may read of its own requests: statuses and sealed packages, projected from events.

Fed by `legal.requests.status` (every service's status of every request) and
`legal.disclosures.issued` (only the sealed form, its hash and signature, and the
ids: never the redacted view or the account); read by the authority API, always
for one authority, so that an authority never sees another's request.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime

import asyncpg

from warden.contract.events import DisclosureIssued, RequestStatus
from warden.runtime.service import Context

SUBMITTED = "submitted"  # the API's own status: accepted over HTTP, not yet seen by intake's consumer


async def record_status(ctx: Context, status: RequestStatus) -> None:
    """Append the status to its request's history; the newest one is the request's status."""
    reasons = json.dumps([r.model_dump(mode="json") for r in status.reasons])
    await ctx.conn.execute(
        "INSERT INTO request_statuses (authority_id, request_id, case_id, status, reasons, at, deadline)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
        status.authority_id, status.request_id, status.case_id, status.status.value, reasons, status.at,
        status.deadline)
    await ctx.conn.execute(
        """INSERT INTO authority_requests (authority_id, request_id, case_id, status, submitted_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $5)
           ON CONFLICT (authority_id, request_id) DO UPDATE SET
             case_id = COALESCE(EXCLUDED.case_id, authority_requests.case_id),
             status = CASE WHEN authority_requests.updated_at <= EXCLUDED.updated_at
                           THEN EXCLUDED.status ELSE authority_requests.status END,
             updated_at = GREATEST(authority_requests.updated_at, EXCLUDED.updated_at)""",
        status.authority_id, status.request_id, status.case_id, status.status.value, status.at)


async def record_disclosure(ctx: Context, issued: DisclosureIssued) -> None:
    await ctx.conn.execute(
        """INSERT INTO authority_disclosures (case_id, request_id, authority_id, generated_at, period_start,
                                              period_end, sealed, sha256, signature)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        issued.case_id, issued.request_id, issued.authority_id, issued.generated_at, issued.period.start,
        issued.period.end, issued.sealed, issued.sha256, issued.signature)


async def record_submission(conn: asyncpg.Connection, authority_id: str, request_id: str, at: datetime) -> None:
    """A request accepted over HTTP, readable at once; its statuses follow from the consumers."""
    await conn.execute(
        "INSERT INTO authority_requests (authority_id, request_id, status, submitted_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING", authority_id, request_id, SUBMITTED, at)


async def request_of(conn: asyncpg.Connection, authority_id: str, request_id: str) -> dict | None:
    """The authority's request with its status history, oldest first; None if it is not this authority's."""
    row = await conn.fetchrow("SELECT * FROM authority_requests WHERE authority_id = $1 AND request_id = $2",
                              authority_id, request_id)
    if row is None:
        return None
    history = await conn.fetch(
        "SELECT case_id, status, reasons, at, deadline FROM request_statuses WHERE authority_id = $1 AND request_id = $2"
        " ORDER BY at, id", authority_id, request_id)
    return dict(_summary(row), history=[
        {"status": h["status"], "case_id": _text(h["case_id"]), "reasons": json.loads(h["reasons"]), "at": h["at"],
         "deadline": h["deadline"]}
        for h in history])


async def requests_of(conn: asyncpg.Connection, authority_id: str, limit: int,
                      cursor: str | None) -> tuple[list[dict], str | None]:
    """A page of the authority's requests, newest first, and the cursor of the next page (None: no more)."""
    if cursor is None:
        rows = await conn.fetch(
            "SELECT * FROM authority_requests WHERE authority_id = $1"
            " ORDER BY submitted_at DESC, request_id DESC LIMIT $2", authority_id, limit + 1)
    else:
        after_at, after_id = decode_cursor(cursor)
        rows = await conn.fetch(
            "SELECT * FROM authority_requests WHERE authority_id = $1 AND (submitted_at, request_id) < ($2, $3)"
            " ORDER BY submitted_at DESC, request_id DESC LIMIT $4", authority_id, after_at, after_id, limit + 1)
    page = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    return page, encode_cursor(rows[limit - 1]["submitted_at"], rows[limit - 1]["request_id"]) if more else None


async def disclosures_of(conn: asyncpg.Connection, authority_id: str, request_id: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT * FROM authority_disclosures WHERE authority_id = $1 AND request_id = $2 ORDER BY generated_at",
        authority_id, request_id)
    return [{"case_id": str(r["case_id"]), "request_id": r["request_id"], "authority_id": r["authority_id"],
             "generated_at": r["generated_at"], "period": {"start": r["period_start"], "end": r["period_end"]},
             "sealed": r["sealed"], "sha256": r["sha256"], "signature": r["signature"]} for r in rows]


def encode_cursor(submitted_at: datetime, request_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([submitted_at.isoformat(), request_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """ValueError when the cursor is not one this API gave."""
    try:
        at, request_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(request_id)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValueError("not a cursor of this list") from exc


def _summary(row: asyncpg.Record) -> dict:
    return {"request_id": row["request_id"], "authority_id": row["authority_id"], "case_id": _text(row["case_id"]),
            "status": row["status"], "submitted_at": row["submitted_at"], "updated_at": row["updated_at"]}


def _text(value) -> str | None:
    return None if value is None else str(value)
