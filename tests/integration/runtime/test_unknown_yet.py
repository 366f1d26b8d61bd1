"""UnknownYet: an event rejected for want of what the catch-up topics bring is handled again once they are read
to their end (BatchProcessor.catch_up), in a batch of its own transaction; rejected again, it is dead-lettered;
a catch-up cut short is a transient failure, never a dead letter."""
from __future__ import annotations

from warden.contract.envelope import UnknownYet
from warden.runtime.consumer import CatchUpIncomplete
from warden.runtime.database import RUNTIME_MIGRATIONS, is_transient
from warden.runtime.service import Context, Service, Subscription

from tests.integration.runtime.test_batch_handler import APPEALS, loop_of, record, seen_and_dead_letters, seen_table


class Registry:
    """A handler that knows only the appeals its registry holds; the catch-up learns `arrives` (or fails)."""

    def __init__(self, arrives: set[str], fails: bool = False):
        self.known: set[str] = set()
        self.arrives, self.fails = arrives, fails
        self.catch_ups = 0

    async def catch_up(self) -> int:
        self.catch_ups += 1
        if self.fails:
            raise CatchUpIncomplete("stopping")
        self.known |= self.arrives
        return len(self.arrives)

    async def handle(self, ctx: Context, appeal) -> None:
        if appeal.appeal_id not in self.known:
            raise UnknownYet("unknown_appeal", "not in the registry copy")
        await ctx.conn.execute("INSERT INTO seen (id) VALUES ($1)", appeal.appeal_id)


async def run(database_url: str, registry: Registry, ids: list[str]) -> tuple[list[str], list[bytes], Exception | None]:
    """What the batch of `ids` left: the appeals handled, the dead letters' reasons, and what it raised."""
    async with seen_table(database_url) as (schema, pool):
        loop = loop_of(Service("unknown-test", schema, [Subscription(APPEALS, registry.handle)], [RUNTIME_MIGRATIONS]),
                       pool)
        loop.processor.catch_up = registry.catch_up
        raised = None
        try:
            await loop.process([record(offset, appeal_id) for offset, appeal_id in enumerate(ids)])
        except Exception as exc:
            raised = exc
        return (*await seen_and_dead_letters(pool), raised)


async def test_an_event_known_once_the_registry_is_read_to_its_end_is_handled(database_url):
    registry = Registry(arrives={"b"})
    registry.known.add("a")
    seen, reasons, raised = await run(database_url, registry, ["a", "b"])
    assert (seen, reasons, raised, registry.catch_ups) == (["a", "b"], [], None, 1)


async def test_events_still_unknown_after_one_catch_up_are_dead_lettered_and_their_batch_mates_go_on(database_url):
    registry = Registry(arrives={"b"})
    seen, reasons, raised = await run(database_url, registry, ["forged-1", "b", "forged-2"])
    assert (seen, reasons, raised, registry.catch_ups) == (["b"], [b"unknown_appeal", b"unknown_appeal"], None, 1)


async def test_a_catch_up_cut_short_fails_the_batch_as_transient_and_dead_letters_nothing(database_url):
    registry = Registry(arrives={"b"}, fails=True)
    seen, reasons, raised = await run(database_url, registry, ["b"])
    assert isinstance(raised, CatchUpIncomplete) and is_transient(raised)  # the consumer loop retries the batch
    assert (seen, reasons, registry.catch_ups) == ([], [], 1)
