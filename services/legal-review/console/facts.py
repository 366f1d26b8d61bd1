"""What the case page shows beside the case itself: the signed documents checked again, the authority's
registry history and its earlier cases here. Read-only; the signatures are verified as the page renders."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from warden.keys import key_id
from warden.provenance import signed_by

from legal_review.cases import Case


@dataclass(frozen=True)
class SignedDocument:
    title: str
    text: str  # the document as signed, keys sorted (the signature covers its RFC 8785 form without `signature`)
    verifies: bool
    fields: dict[str, Any]


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    registered_at: datetime
    revoked_at: datetime | None
    pinned: bool  # the key the case's request verified with


@dataclass(frozen=True)
class Provenance:
    key_id: str | None
    key_revoked_at: datetime | None
    key_registered: bool  # the pinned key is in the registry copy at all
    request: SignedDocument | None
    amendments: list[SignedDocument]


def _document(title: str, signed: dict, key: str | None) -> SignedDocument:
    return SignedDocument(title, json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False),
                          bool(key) and signed_by(signed, key), signed)


def provenance(case: Case, keys: list[KeyRecord]) -> Provenance:
    """The request as the authority signed it and its amendments, each verified again now with the key the
    request was verified with at receipt (pinned to the case), and that key's standing in the registry."""
    pinned = next((k for k in keys if k.pinned), None)
    key = case.authority_key
    return Provenance(
        key_id=key_id(key) if key else None, key_revoked_at=pinned.revoked_at if pinned else None,
        key_registered=pinned is not None,
        request=_document("Request as signed", case.submitted, key) if case.submitted is not None else None,
        amendments=[_document(f"Amendment {n}", a, key) for n, a in enumerate(case.amendments, 1)])


async def key_history(conn: asyncpg.Connection, case: Case) -> list[KeyRecord]:
    """Every key the registry copy holds for the case's authority, oldest first, with its revocation."""
    rows = await conn.fetch("SELECT public_key, registered_at, revoked_at FROM authority_keys"
                            " WHERE authority_id = $1 ORDER BY registered_at, public_key", case.authority_id)
    return [KeyRecord(key_id(r["public_key"]), r["registered_at"], r["revoked_at"],
                      r["public_key"] == case.authority_key) for r in rows]


@dataclass(frozen=True)
class AuthorityCases:
    counts: dict[str, int]  # status -> cases
    recent: list[asyncpg.Record]


async def earlier_cases(conn: asyncpg.Connection, case: Case, limit: int = 10) -> AuthorityCases:
    """The authority's other cases with this service: counts by outcome and the latest few."""
    counts = await conn.fetch("SELECT status, count(*) AS n FROM cases WHERE authority_id = $1 AND case_id <> $2"
                              " GROUP BY status ORDER BY status", case.authority_id, case.case_id)
    recent = await conn.fetch("SELECT case_id, status, kind, received_at, decided_at FROM cases"
                              " WHERE authority_id = $1 AND case_id <> $2 ORDER BY received_at DESC LIMIT $3",
                              case.authority_id, case.case_id, limit)
    return AuthorityCases({r["status"]: r["n"] for r in counts}, list(recent))
