"""Builders of realistic signed legal requests and registered authorities for tests."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from warden.contract.events import AuthorityRegistered, LegalRequest, RequestApproved
from warden.identifiers import case_id_for, normalise_suspect
from warden.provenance import sign_decision
from warden.signing import generate_keypair, sign, signed_bytes

from warden.authorities import sign_record

from tests.support import keys
from tests.support.kafka import produce_event


def new_authority(kind: str = "court", country: str = "FR", status: str = "active") -> dict[str, Any]:
    keys = generate_keypair()
    return {"authority_id": f"auth-{uuid.uuid4().hex[:10]}", "name": "Test court", "country": country,
            "kind": kind, "status": status, "public_key": keys["public_key"], "private_key": keys["private_key"]}


def registry_record(authority: dict[str, Any], *operator_keys: str, **changes: Any) -> dict[str, Any]:
    """The authority's registry record, signed by the given operator keys (default: the test registry key)."""
    record = AuthorityRegistered.model_validate(dict(authority, updated_at=datetime.now(timezone.utc), **changes))
    body = record.model_dump(mode="json", exclude={"signatures"})
    return sign_record(body, *(operator_keys or (keys.REGISTRY["private_key"],)))


async def register_authority(bootstrap: str, authority: dict[str, Any], *operator_keys: str,
                             **changes: Any) -> dict[str, Any]:
    """Publish the authority's record as an operator does (`warden authority add`); returns it."""
    record = registry_record(authority, *operator_keys, **changes)
    await produce_event(bootstrap, "legal.authorities", "warden.legal.authority.registered.v1",
                        record, source="/warden/cli")
    return record


def request_data(authority: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    data: dict[str, Any] = {
        "request_id": f"REQ-{uuid.uuid4().hex[:10]}",
        "authority_id": authority["authority_id"],
        "instrument": {"type": "court_order", "reference": "RG 26/0001", "issued_by": "Investigating judge",
                       "issued_at": (now - timedelta(days=2)).isoformat(),
                       "expires_at": (now + timedelta(days=60)).isoformat()},
        "suspect": {"username": "@Dealer_42", "phone_number": "+33 6 12 34 56 78"},
        "offense": {"category": "drug_trafficking", "statute": "Code penal 222-37",
                    "description": "Sale of narcotics through a public channel"},
        "data_categories": ["ip_addresses", "phone_number"],
        "period": {"start": (now - timedelta(days=90)).isoformat(), "end": (now - timedelta(days=1)).isoformat()},
        "emergency": False,
        "nondisclosure_until": None,
    }
    data.update(overrides)
    return data


def signed(data: dict[str, Any], private_key: str) -> dict[str, Any]:
    body = {k: v for k, v in data.items() if k != "signature"}
    return dict(body, signature=sign(signed_bytes(body), private_key))


def _json_dates(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_dates(v) for k, v in value.items()}
    return value


def signed_approval(authority: dict[str, Any], suspect: dict[str, Any], *, kind: str = "disclosure",
                    hold_until: datetime | None = None, decision_key: str | None = None,
                    **request_overrides: Any) -> dict[str, Any]:
    """An approval as legal review emits it: of a request `authority` signed (its fields from
    `request_overrides`), granting all it asked, pinned to the authority's key, signed with the
    test decision key (or `decision_key`)."""
    instrument = {"type": "preservation_request" if kind == "preservation" else "court_order",
                  "reference": "RG 26/0002", "issued_by": "Investigating judge",
                  "issued_at": (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(), "expires_at": None}
    instrument = request_overrides.pop("instrument", instrument)
    data = request_data(authority, suspect=suspect, instrument=instrument,
                        **{k: _json_dates(v) for k, v in request_overrides.items()})
    submitted = signed(data, authority["private_key"])
    request = LegalRequest.model_validate(submitted)
    approval = RequestApproved(
        case_id=case_id_for(request.authority_id, request.request_id), request_id=request.request_id,
        authority_id=request.authority_id, suspect=normalise_suspect(request.suspect), kind=kind,
        data_categories=request.data_categories, period=request.period, hold_until=hold_until,
        nondisclosure_until=request.nondisclosure_until, policy_rules=[{"rule": "test", "outcome": "passed"}],
        decided_by=["policy"], signed_request=submitted, authority_key=authority["public_key"],
        decided_at=datetime.now(timezone.utc))
    return sign_decision(approval.model_dump(mode="json"), decision_key or keys.DECISION["private_key"])
