"""Context.cache: an authority is read once per batch, and recording an authority event drops it."""
from __future__ import annotations

from datetime import datetime, timezone

from warden.authorities import authority_of, record_authority
from warden.contract.events import AuthorityRegistered
from warden.runtime.service import Context

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

    async def execute(self, query: str, *args):
        self.row = dict(zip(("authority_id", "name", "country", "kind", "public_key", "status", "updated_at"), args))


async def test_one_read_per_batch_until_an_authority_event_is_recorded():
    registry = Registry(registered("Old name", datetime(2026, 1, 1, tzinfo=timezone.utc)))
    cache: dict = {}
    ctx = Context("svc", registry, None, "legal.requests.received", 0, 0, None, None, cache=cache)
    first = await authority_of(ctx, "court-1")
    again = await authority_of(ctx, "court-1")
    assert registry.reads == 1 and first is again and first.name == "Old name"

    update = Context("svc", registry, None, "legal.authorities", 0, 1, None, None, cache=cache)
    await record_authority(update, registered("New name", datetime(2026, 2, 1, tzinfo=timezone.utc)))
    after = await authority_of(ctx, "court-1")
    assert registry.reads == 2 and after.name == "New name"

    next_batch = Context("svc", registry, None, "legal.requests.received", 0, 2, None, None)
    await authority_of(next_batch, "court-1")
    assert registry.reads == 3  # a new batch (a new cache) reads again
