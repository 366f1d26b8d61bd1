"""Helpers for legal review's integration tests: received events, registry sync, status waits."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from warden.contract.events import LegalRequest
from warden.identifiers import case_id_for, normalise_suspect

from tests.support.kafka import produce_event, wait_for_events
from tests.support.requests import register_authority, request_data, signed

RECEIVED = "warden.legal.request.received.v1"


def received(authority: dict[str, Any], received_at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A `received` event's data, as intake would emit it, with dates relative to `received_at`."""
    at = received_at or datetime.now(timezone.utc)
    data = request_data(authority, **{
        "instrument": {"type": "court_order", "reference": "RG 24/0001", "issued_by": "Investigating judge",
                       "issued_at": (at - timedelta(days=2)).isoformat(),
                       "expires_at": (at + timedelta(days=60)).isoformat()},
        "suspect": {"account_id": f"acc-{uuid.uuid4().hex[:8]}"},
        "period": {"start": (at - timedelta(days=60)).isoformat(), "end": (at - timedelta(days=1)).isoformat()},
    })
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if key in ("instrument", "offense") and isinstance(value, dict) else value
    return received_for(signed(data, authority["private_key"]), at)


def received_for(submitted: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The `received` event intake emits for a signed request: its case id, the normalised copy, the original."""
    request = LegalRequest.model_validate(submitted)
    normalised = request.model_copy(update={"suspect": normalise_suspect(request.suspect)})
    return {"case_id": case_id_for(request.authority_id, request.request_id),
            "received_at": (at or datetime.now(timezone.utc)).isoformat(),
            "request": normalised.model_dump(mode="json"), "submitted": submitted}


async def publish_received(bootstrap: str, event_data: dict[str, Any]) -> None:
    await produce_event(bootstrap, "legal.requests.received", RECEIVED, event_data, source="/warden/intake")


async def registered(bootstrap: str, database_url: str, *authorities: dict[str, Any], timeout: float = 20) -> None:
    """Publish the authorities and wait until legal review's registry copy holds them all."""
    for authority in authorities:
        await register_authority(bootstrap, authority)
    ids = [a["authority_id"] for a in authorities]
    deadline = time.monotonic() + timeout
    while True:
        conn = await asyncpg.connect(database_url)
        try:
            known = await conn.fetchval(
                "SELECT count(*) FROM legal_review.authorities WHERE authority_id = ANY($1)", ids)
        except asyncpg.UndefinedTableError:
            known = 0
        finally:
            await conn.close()
        if known == len(ids):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"legal review knows {known} of {len(ids)} authorities after {timeout}s")
        await asyncio.sleep(0.1)


async def status_of(bootstrap: str, case_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    [event] = await wait_for_events(
        bootstrap, "legal.requests.status",
        lambda e: e["data"].get("case_id") == case_id and e["data"]["status"] == status, timeout=timeout)
    return event


async def decision_of(bootstrap: str, case_id: str, timeout: float = 20) -> dict[str, Any]:
    [event] = await wait_for_events(bootstrap, "legal.requests.decided",
                                    lambda e: e["data"]["case_id"] == case_id, timeout=timeout)
    return event
