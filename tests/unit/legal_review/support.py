"""Builders of requests, authorities and facts for legal review's unit tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from warden.contract.events import AuthorityRegistered, LegalRequest

from legal_review.rules import EarlierHold, Facts, SuspectHold

NOW = datetime(2024, 8, 15, 12, 0, tzinfo=timezone.utc)
KEY = "A" * 43 + "="


def authority(kind: str = "court", country: str = "FR", status: str = "active") -> AuthorityRegistered:
    return AuthorityRegistered(authority_id="auth-1", name="Tribunal", country=country, kind=kind, public_key=KEY,
                               status=status, updated_at=NOW - timedelta(days=30))


def request(**overrides: Any) -> LegalRequest:
    data: dict[str, Any] = {
        "request_id": "REQ-1", "authority_id": "auth-1",
        "instrument": {"type": "court_order", "reference": "RG 24/1", "issued_by": "Investigating judge",
                       "issued_at": NOW - timedelta(days=2), "expires_at": NOW + timedelta(days=60)},
        "suspect": {"account_id": "acc-1"},
        "offense": {"category": "drug_trafficking", "statute": "Code penal 222-37", "description": "Sale of drugs"},
        "data_categories": ["ip_addresses", "phone_number"],
        "period": {"start": NOW - timedelta(days=90), "end": NOW - timedelta(days=1)},
        "emergency": False, "signature": "c2ln",
    }
    for key, value in overrides.items():
        if key in ("instrument", "period", "offense") and isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return LegalRequest.model_validate(data)


def earlier_hold(**overrides: Any) -> EarlierHold:
    values = dict(case_id="c-0", kind="preservation", status="approved", hold_until=NOW + timedelta(days=10),
                  extensions=0)
    values.update(overrides)
    return EarlierHold(**values)


def facts(req: LegalRequest | None = None, auth: AuthorityRegistered | None | str = "default",
          earlier: EarlierHold | None = None, holds: tuple[SuspectHold, ...] = ()) -> Facts:
    return Facts(req or request(), NOW, authority() if auth == "default" else auth, earlier, holds)
