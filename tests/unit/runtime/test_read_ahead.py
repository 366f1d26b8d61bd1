"""While a batch waits for the database, the next one is fetched (never waiting for the broker) and decoded;
it is still processed only after the first has committed (the database work is left out)."""
from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import encode_structured, new_event
from warden.runtime.consumer import ConsumerLoop
from warden.runtime.service import Service, Subscription

TOPIC = "moderation.appeals.submitted"
P0 = TopicPartition(TOPIC, 0)


def batch(*offsets: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    records = []
    for o in offsets:
        value, headers = encode_structured(new_event("warden.moderation.appeal.submitted.v1", "/t", {
            "appeal_id": f"a-{o}", "content_id": "c", "account_id": "u", "statement": "",
            "submitted_at": "2026-01-01T00:00:00+00:00"}))
        records.append(ConsumerRecord(TOPIC, 0, o, 0, 0, b"c", value, None, 1, len(value), headers))
    return {P0: records}


class FakeConsumer:
    def __init__(self, batches: list[dict], stopping: asyncio.Event):
        self.batches, self.stopping = list(batches), stopping
        self.polls: list[int] = []  # timeout_ms of each getmany
        self.commits: list[dict] = []

    async def getmany(self, timeout_ms: int, max_records: int):
        self.polls.append(timeout_ms)
        if not self.batches:
            if timeout_ms:
                self.stopping.set()
            return {}
        return self.batches.pop(0)

    async def commit(self, offsets):
        self.commits.append(dict(offsets))

    def highwater(self, tp):
        return None


def loop_with(consumer: FakeConsumer) -> ConsumerLoop:
    return ConsumerLoop(Service("read-ahead", "unused", [Subscription(TOPIC, None)], []), pool=None,
                        consumer=consumer, batch_max_records=100, poll_timeout_ms=50, retry_initial_s=0.1,
                        retry_max_s=0.1, commit_interval_s=0)


async def test_the_next_batch_is_decoded_while_the_first_waits_for_the_database():
    stopping = asyncio.Event()
    consumer = FakeConsumer([batch(0, 1), batch(2, 3, 4)], stopping)
    loop = loop_with(consumer)
    loop.DECODE_SLICE = 1
    timeline: list[str] = []
    decode = loop.processor.decode

    def decoding(records):
        timeline.append(f"decode {records[0].offset}")
        return decode(records)
    loop.processor.decode = decoding

    async def process(records, *, decoded=None):
        first = records[0].offset
        timeline.append(f"start {first}" + (" (decoded ahead)" if decoded is not None else ""))
        if decoded is not None:
            assert [d.record for d in decoded] == records and all(d.payload is not None for d in decoded)
        await asyncio.sleep(0.05)  # the transaction, waiting for the database
        timeline.append(f"committed {first}")
    loop.process = process

    await loop.run(stopping)

    assert timeline == ["start 0", "decode 2", "decode 3", "decode 4", "committed 0",
                        "start 2 (decoded ahead)", "committed 2"]
    assert consumer.polls[:2] == [50, 0]  # reading ahead never waits for the broker
    assert consumer.commits == [{P0: 2}, {P0: 5}]


async def test_a_batch_read_ahead_is_not_committed_when_the_loop_stops_before_handling_it():
    stopping = asyncio.Event()
    consumer = FakeConsumer([batch(0), batch(1)], stopping)
    loop = loop_with(consumer)

    async def database_down_while_stopping(records, stopping_, *, decoded=None):
        stopping.set()
        return False
    loop.process_until_done = database_down_while_stopping

    await loop.run(stopping)

    assert consumer.commits == []  # neither batch committed: both are redelivered after a restart
    assert consumer.polls == [50, 0]
