"""What each authority may read of its own requests: statuses and sealed packages, projected from events.

Fed by `legal.requests.progress` (every service's status of every request, in full) and
`legal.disclosures.issued` (only the sealed form, its hash and signature, and the
ids: never the redacted view or the account); read by the authority API, always
for one authority, so that an authority never sees another's request.
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

import asyncpg

from warden.contract.events import DisclosureIssued, RequestProgress, RequestStatus
from warden.runtime.service import BatchItem, Context

SUBMITTED = "submitted"  # the API's own status: accepted over HTTP, not yet seen by intake's consumer
# The API's own history entries for what the authority sent (the request's status stays as it is).
SENT = {"answer": "answer_sent", "withdraw": "withdrawal_sent"}
# Statuses after which there is nothing left to withdraw (and a package, when there is one).
CLOSED = {"invalid", "rejected", "disclosed", "no_data", "preserved", "cancelled", "withdrawn"}
# Statuses before legal review has the case: a withdrawal now could overtake the request on its way there.
IN_TRANSIT = {SUBMITTED, "received"}


async def record_statuses(ctx: Context, items: list[BatchItem[RequestProgress]]) -> None:
    """Batch handler: append each status to its request's history; a request's newest status is its status.

    Two statements for the whole batch; the requests' rows are folded here first (one row per request:
    an upsert may touch a row once per statement). A status already in the history (the same status of the
    request at the same instant: a redelivery) is not added again, and the newest status stays the newest,
    so the subscription takes no inbox claim (Subscription.deduplicates)."""
    statuses = [item.event for item in items]
    await ctx.conn.execute(
        "INSERT INTO request_statuses (authority_id, request_id, case_id, status, reasons, at, deadline, clarification)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[], $6::timestamptz[],"
        " $7::timestamptz[], $8::jsonb[]) ON CONFLICT DO NOTHING",
        [s.authority_id for s in statuses], [s.request_id for s in statuses], [s.case_id for s in statuses],
        [s.status.value for s in statuses],
        [json.dumps([r.model_dump(mode="json") for r in s.reasons]) for s in statuses],
        [s.at for s in statuses], [s.deadline for s in statuses],
        [s.clarification.model_dump_json() if s.clarification else None for s in statuses])
    newest: dict[tuple[str, str], RequestStatus] = {}
    case_ids: dict[tuple[str, str], str | None] = {}
    for status in statuses:
        key = (status.authority_id, status.request_id)
        if key not in newest or newest[key].at <= status.at:
            newest[key] = status
        case_ids[key] = case_ids.get(key) or status.case_id
    latest = list(newest.values())
    await ctx.conn.execute(
        """INSERT INTO authority_requests (authority_id, request_id, case_id, status, submitted_at, updated_at)
           SELECT a, r, c, s, t, t FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[])
             AS u (a, r, c, s, t)
           ON CONFLICT (authority_id, request_id) DO UPDATE SET
             case_id = COALESCE(EXCLUDED.case_id, authority_requests.case_id),
             status = CASE WHEN authority_requests.updated_at <= EXCLUDED.updated_at
                           THEN EXCLUDED.status ELSE authority_requests.status END,
             updated_at = GREATEST(authority_requests.updated_at, EXCLUDED.updated_at)""",
        [s.authority_id for s in latest], [s.request_id for s in latest],
        [case_ids[(s.authority_id, s.request_id)] for s in latest], [s.status.value for s in latest],
        [s.at for s in latest])


async def record_disclosures(ctx: Context, items: list[BatchItem[DisclosureIssued]]) -> None:
    """Batch handler: the sealed packages, kept as bytes, one statement for the batch; a package already kept
    (its case and hash: a redelivery) is not kept again, one whose `sealed` is not base64 is refused."""
    issued, boxes = [], []
    for item in items:
        try:
            boxes.append(base64.b64decode(item.event.sealed, validate=True))
        except binascii.Error:
            item.reject("invalid_data", "sealed is not base64")
            continue
        issued.append(item.event)
    await ctx.conn.execute(
        """INSERT INTO authority_disclosures (case_id, request_id, authority_id, generated_at, period_start,
                                              period_end, sealed, sha256, signature)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                                $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])
           ON CONFLICT DO NOTHING""",
        [i.case_id for i in issued], [i.request_id for i in issued], [i.authority_id for i in issued],
        [i.generated_at for i in issued], [i.period.start for i in issued], [i.period.end for i in issued],
        boxes, [i.sha256 for i in issued], [i.signature for i in issued])


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
        "SELECT case_id, status, reasons, at, deadline, clarification FROM request_statuses"
        " WHERE authority_id = $1 AND request_id = $2 ORDER BY at, id", authority_id, request_id)
    entries = [{"status": h["status"], "case_id": _text(h["case_id"]), "reasons": json.loads(h["reasons"]),
                "at": h["at"], "deadline": h["deadline"],
                "clarification": json.loads(h["clarification"]) if h["clarification"] else None} for h in history]
    asked = [e["clarification"] for e in entries if e["clarification"]]
    open_question = asked[-1] if asked and row["status"] == "needs_clarification" else None
    return dict(_summary(row), history=entries, clarification=open_question,
                packaged=await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM authority_disclosures WHERE authority_id = $1 AND request_id = $2)",
                    authority_id, request_id))


async def record_sent(conn: asyncpg.Connection, authority_id: str, request_id: str, action: str, reference: str,
                      at: datetime) -> bool:
    """Note that the authority sent its answer to a question (reference: its id) or its withdrawal
    (reference: ''), with a history entry (`answer_sent`, `withdrawal_sent`); False if it was sent already."""
    sent = await conn.fetchval(
        "INSERT INTO authority_actions (authority_id, request_id, action, reference, at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING RETURNING true", authority_id, request_id, action, reference, at)
    if sent:
        await conn.execute(
            "INSERT INTO request_statuses (authority_id, request_id, status, reasons, at) VALUES ($1, $2, $3, '[]', $4)"
            " ON CONFLICT DO NOTHING",
            authority_id, request_id, SENT[action], at)
    return bool(sent)


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
             "sealed": base64.b64encode(r["sealed"]).decode(), "sha256": r["sha256"], "signature": r["signature"]}
            for r in rows]


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
