"""Intake's domain rules: pure functions, no I/O."""
from __future__ import annotations

import hashlib
import uuid
from typing import Any

from warden.contract.envelope import EventRejected
from warden.contract.events import Suspect
from warden.identifiers import normalise_phone_number
from warden.identifiers import normalise_username as shared_normalise_username
from warden.signing import canonical

_CASE_NAMESPACE = uuid.UUID("6f1c1d2e-8a57-4d0e-9a43-2f3f5b0d7c11")


def case_id_for(authority_id: str, request_id: str) -> str:
    """Stable, so a request re-read after a crash maps to the same case."""
    return str(uuid.uuid5(_CASE_NAMESPACE, f"{authority_id}\x00{request_id}"))


def fingerprint(request_data: dict[str, Any]) -> str:
    """Identifies a request's content: the same request sent twice has the same fingerprint."""
    return hashlib.sha256(canonical(request_data)).hexdigest()


def normalise_username(raw: str) -> str:
    username = shared_normalise_username(raw)
    if username is None:
        raise EventRejected("invalid_data", "suspect.username is empty once normalised")
    return username


def normalise_suspect(suspect: Suspect) -> Suspect:
    """The identifiers disclosure resolves against its subscriber store."""
    return Suspect(
        account_id=suspect.account_id.strip() if suspect.account_id else None,
        username=normalise_username(suspect.username) if suspect.username else None,
        phone_number=normalise_phone_number(suspect.phone_number, "suspect.phone_number") if suspect.phone_number else None,
    )
