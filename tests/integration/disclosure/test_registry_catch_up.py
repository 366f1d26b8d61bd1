"""An approval read before its authority's registry record: the group's partitions come in no causal order,
so disclosure reads the registry to its end before it dead-letters an approval whose key it does not know
(consumer.CatchUp, UnknownYet). An approval from an authority that was never registered is still refused."""
from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

from warden.runtime import kafka
from warden.runtime.consumer import CatchUp, ConsumerLoop
from warden.runtime.database import create_pool, migrate
from warden.runtime.runner import load_service

from tests.integration.disclosure.test_disclosure_pipeline import (
    DECIDED, SUBSCRIBERS, account, ago, approve, new_ip, new_phone, session,
)
from tests.support.kafka import read_topic
from tests.support.requests import new_authority, register_authority
from tests.support.stack import service_settings

REGISTRY = "legal.authorities"


class Counted:
    """The loop's catch-up, each pass's number of records noted."""

    def __init__(self, catch_up: CatchUp):
        self.catch_up = catch_up
        self.passes: list[int] = []

    async def __call__(self) -> int:
        read = await self.catch_up()
        self.passes.append(read)
        return read


@asynccontextmanager
async def disclosure_batches(bootstrap: str, database_url: str):
    """Disclosure's batch processor with its registry catch-up, caught up once as at start; no consumer group:
    the test hands it the records it chooses, in the order it chooses."""
    service = load_service("disclosure")
    await migrate(database_url, service.schema, service.migration_sets)
    pool = await create_pool(database_url, service.schema, 3)
    loop = ConsumerLoop(service, pool, consumer=None, batch_max_records=500, poll_timeout_ms=100,
                        retry_initial_s=0.1, retry_max_s=0.5, settings=service_settings(bootstrap, database_url))
    reader = kafka.consumer(bootstrap, None)
    await reader.start()
    catch_up = Counted(CatchUp(loop, reader, [REGISTRY], asyncio.Event()))
    loop.processor.catch_up = catch_up
    try:
        await catch_up()
        yield loop, catch_up, pool
    finally:
        await reader.stop()
        await pool.close()


async def records_naming(bootstrap: str, topic: str, *ids: str):
    return [r for r in await read_topic(bootstrap, topic) if any(i.encode() in (r.value or b"") for i in ids)]


async def outcomes(pool, case_id: str) -> dict[str, list[str]]:
    """Each topic disclosure wrote about the case, with the DLQ reasons of its dead letters."""
    rows = await pool.fetch("SELECT topic, header_names, header_values FROM outbox WHERE position($1 IN "
                            "convert_from(value, 'UTF8')) > 0 ORDER BY id", case_id)
    return {r["topic"]: [dict(zip(r["header_names"], r["header_values"])).get("dlq.reason", b"").decode()]
            for r in rows}


async def test_an_approval_read_before_its_authority_s_registry_record_acts_and_a_never_registered_one_is_refused(
        bootstrap, database_url):
    court, stranger = new_authority("court", "FR"), new_authority("court", "FR")
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, new_phone(), ago(100))
    await session(bootstrap, suspect, new_ip(), ago(5))
    async with disclosure_batches(bootstrap, database_url) as (loop, catch_up, pool):
        await register_authority(bootstrap, court)  # on the registry now, unread by the service
        approved = await approve(bootstrap, court, {"account_id": suspect})
        forged = await approve(bootstrap, stranger, {"account_id": suspect})  # its authority never registered
        await loop.process(await records_naming(bootstrap, SUBSCRIBERS, suspect))
        await loop.process(await records_naming(bootstrap, DECIDED, approved["case_id"], forged["case_id"]))
        acted, refused = await outcomes(pool, approved["case_id"]), await outcomes(pool, forged["case_id"])
        reader = catch_up.catch_up.reader
        idle = reader.paused() == reader.assignment() != set()  # between passes it fetches nothing

    assert "legal.disclosures.issued" in acted and DECIDED + ".dlq" not in acted
    assert refused == {DECIDED + ".dlq": ["unregistered_authority_key"]}
    assert catch_up.passes[1:] == [1]  # one pass for the batch, from where the last one ended: the court's record
    assert idle
