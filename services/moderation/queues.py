"""The review queue as a moderator works it: filters, search, sort, keyset pages with counts, claims.

One parameterised, set-based statement per page and one for the counts. Pages are read by keyset
(the last row's sort key), never by OFFSET, along the queue_severity / queue_oldest indexes.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

SORTS = {
    # name: (ORDER BY, the keyset condition after the row ($a priority, $b queued_at, $c content_id))
    "severity": ("q.priority DESC, q.queued_at, q.content_id",
                 "(q.priority < {a} OR (q.priority = {a} AND (q.queued_at, q.content_id) > ({b}, {c})))"),
    "oldest": ("q.queued_at, q.content_id", "(q.queued_at, q.content_id) > ({b}, {c})"),
}
STATUSES = ("listed", "delisted", "unclaimed", "claimed", "mine", "escalated")
PAGE_SIZES = (25, 50, 100)


class Claimed(Exception):
    """Another moderator holds the item: they decide it, or their claim runs out."""

    def __init__(self, moderator: str, until: datetime):
        super().__init__(f"{moderator} holds this item until {until:%H:%M} UTC: they decide it, or it is free then")
        self.moderator, self.until = moderator, until


@dataclass(frozen=True)
class Filters:
    reason: str = ""
    severity: str = ""        # high | normal
    status: str = ""          # one of STATUSES
    trusted: bool = False
    coordinated: bool = False
    language: str = ""
    surface: str = ""
    search: str = ""          # a content id, or the owner's or a reporter's account id
    sort: str = "severity"
    size: int = 50

    @classmethod
    def parse(cls, values: dict[str, str]) -> Filters:
        """From form or query fields; anything unknown falls back to the default (never an error)."""
        def text(name: str, limit: int = 200) -> str:
            value = (values.get(name) or "").strip()[:limit]
            return "" if "\x00" in value else value  # no stored text holds a NUL (PostgreSQL refuses one)
        size = int(values["size"]) if str(values.get("size", "")).isdigit() else 50
        return cls(reason=text("reason", 40), severity=text("severity") if text("severity") in ("high", "normal") else "",
                   status=text("status") if text("status") in STATUSES else "",
                   trusted=bool(values.get("trusted")), coordinated=bool(values.get("coordinated")),
                   language=text("language", 16), surface=text("surface", 40), search=text("search"),
                   sort=text("sort") if text("sort") in SORTS else "severity",
                   size=size if size in PAGE_SIZES else 50)


def where(f: Filters, moderator: str, now: datetime) -> tuple[str, list]:
    """The WHERE clause and its arguments ($1.. in order) for the filters."""
    args: list = []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    clauses = []
    if f.reason:
        clauses.append(f"q.reason = {arg(f.reason)}")
    if f.severity:
        clauses.append("q.urgent" if f.severity == "high" else "NOT q.urgent")
    if f.status in ("listed", "delisted"):
        clauses.append(f"c.state = {arg(f.status)}")
    elif f.status == "escalated":
        clauses.append("q.escalated_at IS NOT NULL")
    elif f.status in ("unclaimed", "claimed", "mine"):
        live = f"cl.expires_at > {arg(now)}"
        if f.status == "unclaimed":
            clauses.append(f"(cl.content_id IS NULL OR NOT {live})")
        elif f.status == "claimed":
            clauses.append(live)
        else:
            clauses.append(f"{live} AND cl.moderator = {arg(moderator)}")
    if f.trusted:
        clauses.append("q.trusted")
    if f.coordinated:
        clauses.append("q.coordinated")
    if f.language:
        clauses.append(f"p.language = {arg(f.language)}")
    if f.surface:
        clauses.append(f"EXISTS (SELECT 1 FROM reports r WHERE r.content_id = q.content_id AND r.surface = {arg(f.surface)})")
    if f.search:
        s = arg(f.search)
        clauses.append(f"(q.content_id = {s} OR p.owner_account_id = {s} OR EXISTS "
                       f"(SELECT 1 FROM reports r WHERE r.content_id = q.content_id AND r.reporter_id = {s}))")
    return (" AND ".join(clauses) or "true"), args


FROM = """FROM queue q JOIN content c USING (content_id)
          LEFT JOIN platform_content p USING (content_id) LEFT JOIN claims cl USING (content_id)"""


def encode_cursor(row) -> str:
    key = [row["priority"], row["queued_at"].isoformat(), row["content_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[float, datetime, str] | None:
    """A cursor from a page; a damaged one reads as the first page."""
    if not cursor:
        return None
    try:
        priority, queued_at, content_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        key = float(priority), datetime.fromisoformat(queued_at), str(content_id)
    except (ValueError, TypeError):
        return None
    return None if "\x00" in key[2] else key


async def page(conn: asyncpg.Connection, f: Filters, moderator: str, now: datetime, after: str | None = None):
    """One page of the queue after the cursor, and whether another follows."""
    condition, args = where(f, moderator, now)
    order, keyset = SORTS[f.sort]
    key = decode_cursor(after)
    if key:
        placeholders = {}
        for name, value, kind in zip("abc", key, ("float8", "timestamptz", "text")):
            if "{" + name + "}" in keyset:  # only the parameters the sort's condition reads
                args.append(value)
                placeholders[name] = f"${len(args)}::{kind}"
        condition += " AND " + keyset.format(**placeholders)
    rows = await conn.fetch(
        f"""SELECT q.content_id, q.priority, q.urgent, q.trusted, q.score, q.reason, q.automated, q.queued_at,
                   q.coordinated, q.source, q.escalated_by, c.state, c.kind, p.title, p.language,
                   p.model_score, p.model_label, p.model_version,
                   CASE WHEN cl.expires_at > ${len(args) + 1} THEN cl.moderator END AS claimed_by,
                   (SELECT count(DISTINCT reporter_id) FROM reports r WHERE r.content_id = q.content_id
                      AND r.reported_at >= coalesce(c.cleared_at, '-infinity')) AS reporters
            {FROM} WHERE {condition} ORDER BY {order} LIMIT {f.size + 1}""", *args, now)
    return rows[:f.size], (encode_cursor(rows[f.size - 1]) if len(rows) > f.size else None)


async def counts(conn: asyncpg.Connection, f: Filters, moderator: str, now: datetime) -> dict[str, int]:
    """How many items match the filters, and of those how many are high severity, unclaimed, mine."""
    condition, args = where(f, moderator, now)
    n = len(args)
    row = await conn.fetchrow(
        f"""SELECT count(*) AS matching, count(*) FILTER (WHERE q.urgent) AS high,
                   count(*) FILTER (WHERE cl.content_id IS NULL OR cl.expires_at <= ${n + 1}) AS unclaimed,
                   count(*) FILTER (WHERE cl.expires_at > ${n + 1} AND cl.moderator = ${n + 2}) AS mine,
                   (SELECT count(*) FROM queue) AS total
            {FROM} WHERE {condition}""", *args, now, moderator)
    return dict(row)


async def neighbours(conn: asyncpg.Connection, content_id: str, moderator: str, now: datetime) -> dict:
    """The items before and after this one in the default order (severity first), skipping others' claims."""
    row = await conn.fetchrow("SELECT priority, queued_at, content_id FROM queue WHERE content_id = $1", content_id)
    free = "(cl.content_id IS NULL OR cl.expires_at <= $4 OR cl.moderator = $5)"
    if row is None:
        first = await conn.fetchval(f"SELECT q.content_id {FROM} WHERE {free.replace('$4', '$1').replace('$5', '$2')}"
                                    " ORDER BY q.priority DESC, q.queued_at, q.content_id LIMIT 1", now, moderator)
        return {"next": first, "previous": None}
    after = await conn.fetchval(
        f"""SELECT q.content_id {FROM} WHERE {free} AND {SORTS['severity'][1].format(a='$1', b='$2', c='$3')}
            ORDER BY q.priority DESC, q.queued_at, q.content_id LIMIT 1""", *row.values(), now, moderator)
    before = await conn.fetchval(
        f"""SELECT q.content_id {FROM} WHERE {free} AND
                   (q.priority > $1 OR (q.priority = $1 AND (q.queued_at, q.content_id) < ($2, $3)))
            ORDER BY q.priority, q.queued_at DESC, q.content_id DESC LIMIT 1""", *row.values(), now, moderator)
    return {"next": after, "previous": before}


async def claim(conn: asyncpg.Connection, content_id: str, moderator: str, now: datetime, minutes: float) -> dict:
    """Hold a queued item (or extend one's own hold); an expired claim passes on. Returns the claim as it stands:
    the holder may be someone else. None when the item is not queued."""
    row = await conn.fetchrow(
        """INSERT INTO claims (content_id, moderator, claimed_at, expires_at)
           SELECT content_id, $2, $3, $4 FROM queue WHERE content_id = $1
           ON CONFLICT (content_id) DO UPDATE SET moderator = EXCLUDED.moderator,
               claimed_at = CASE WHEN claims.moderator = EXCLUDED.moderator THEN claims.claimed_at
                                 ELSE EXCLUDED.claimed_at END, expires_at = EXCLUDED.expires_at
             WHERE claims.moderator = EXCLUDED.moderator OR claims.expires_at <= $3
           RETURNING moderator, claimed_at, expires_at""",
        content_id, moderator, now, now + timedelta(minutes=minutes))
    if row is None:
        row = await conn.fetchrow("SELECT moderator, claimed_at, expires_at FROM claims WHERE content_id = $1",
                                  content_id)
    return dict(row) if row else None


async def holder(conn: asyncpg.Connection, content_id: str, now: datetime) -> dict | None:
    row = await conn.fetchrow("SELECT moderator, claimed_at, expires_at FROM claims"
                              " WHERE content_id = $1 AND expires_at > $2", content_id, now)
    return dict(row) if row else None


async def check_free(conn: asyncpg.Connection, content_id: str, moderator: str, now: datetime) -> None:
    """Before a decision (in its transaction): refuse when someone else holds the item."""
    row = await conn.fetchrow("SELECT moderator, expires_at FROM claims WHERE content_id = $1 AND expires_at > $2"
                              " FOR UPDATE", content_id, now)
    if row and row["moderator"] != moderator:
        raise Claimed(row["moderator"], row["expires_at"])


async def escalate(conn: asyncpg.Connection, content_id: str, moderator: str, note: str | None,
                   now: datetime) -> bool:
    """Mark a queued item for a senior moderator and let go of it; False when it is not queued."""
    await check_free(conn, content_id, moderator, now)
    done = await conn.fetchval(
        """UPDATE queue SET escalated_by = $2, escalated_at = $3, escalation_note = $4 WHERE content_id = $1
           RETURNING true""", content_id, moderator, now, note)
    await conn.execute("DELETE FROM claims WHERE content_id = $1", content_id)
    return bool(done)
