"""Context.state: an authority is read once per batch (dropping it on a registry record:
tests/integration/security/test_registry_forgeries.py); a service must declare the state it reads."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from warden.authorities import AuthorityState, authority_of
from warden.contract.events import AuthorityRegistered
from warden.runtime.service import BatchState, Context

KEY = "MCowBQYDK2VwAyEA" + "A" * 28


def registered(name: str, at: datetime) -> AuthorityRegistered:
    return AuthorityRegistered(authority_id="court-1", name=name, country="FR", kind="court",
                               public_key=KEY, status="active", updated_at=at)


class Registry:
    """Stands in for the connection: counts the registry reads, keeps the last upsert."""

    def __init__(self, authority: AuthorityRegistered):
        self.row, self.reads = authority.model_dump(), 0

    async def fetchrow(self, query: str, authority_id: str):
        self.reads += 1
        return self.row if authority_id == self.row["authority_id"] else None


async def test_one_read_per_batch():
    registry = Registry(registered("Old name", datetime(2026, 1, 1, tzinfo=timezone.utc)))
    ctx = Context("svc", registry, None, "legal.requests.received", 0, 0, None, None, state=AuthorityState())
    first = await authority_of(ctx, "court-1")
    again = await authority_of(ctx, "court-1")
    assert registry.reads == 1 and first is again and first.name == "Old name"

    next_batch = Context("svc", registry, None, "legal.requests.received", 0, 2, None, None,
                         state=AuthorityState())
    await authority_of(next_batch, "court-1")
    assert registry.reads == 2  # a new batch (a new state) reads again


async def test_a_service_that_checks_authorities_must_declare_their_state():
    registry = Registry(registered("Old name", datetime(2026, 1, 1, tzinfo=timezone.utc)))
    ctx = Context("svc", registry, None, "legal.requests.received", 0, 0, None, None, state=BatchState())
    with pytest.raises(TypeError, match="AuthorityState"):
        await authority_of(ctx, "court-1")
    assert registry.reads == 0
