"""Rows the consumer hands over go out without a scan, once, and never ahead of rows committed before them."""
from __future__ import annotations

import asyncio
import uuid

from aiokafka.errors import KafkaTimeoutError

from tests.support.kafka import read_topic
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.kafka import producer as new_producer
from warden.runtime.outbox import OutboxRelay, OutboxRow, write_rows

TOPIC = "legal.requests.status"  # any topic of the contract; the tests find their rows by key (not JSON)


class FailingOnce:
    """The producer, except that its first send times out."""

    def __init__(self, producer):
        self.producer, self.failed = producer, False

    async def send(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise KafkaTimeoutError()
        return await self.producer.send(*args, **kwargs)


class Setup:
    def __init__(self, database_url: str, bootstrap: str):
        self.database_url, self.bootstrap = database_url, bootstrap
        self.key = uuid.uuid4().hex.encode()
        self.statements: list[str] = []

    async def __aenter__(self):
        schema = f"rt_handover_{uuid.uuid4().hex[:6]}"
        await migrate(self.database_url, schema, [RUNTIME_MIGRATIONS])
        self.pool = await create_pool(self.database_url, schema, 1)
        async with self.pool.acquire() as conn:
            conn.add_query_logger(lambda logged: self.statements.append(logged.query))
        self.producer = new_producer(self.bootstrap)
        await self.producer.start()
        self.relay = OutboxRelay("test", self.pool, self.producer, batch_size=100, retry_initial_s=0.05,
                                 retry_max_s=0.05)
        return self

    async def __aexit__(self, *exc):
        await self.producer.stop()
        await self.pool.close()

    async def commit(self, *values: bytes) -> tuple[list[int], list[OutboxRow]]:
        """Rows committed as a consumer batch would: (ids, rows)."""
        rows = [OutboxRow(TOPIC, self.key, v) for v in values]
        async with self.pool.acquire() as conn, conn.transaction():
            return await write_rows(conn, rows), rows

    async def waiting(self) -> int:
        async with self.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM outbox")

    async def published(self) -> list[bytes]:
        return [r.value for r in await read_topic(self.bootstrap, TOPIC) if r.key == self.key]

    async def run_until_empty(self) -> None:
        """The relay's own loop, stopped once the outbox is empty."""
        stopping = asyncio.Event()
        task = asyncio.create_task(self.relay.run(stopping))
        while await self.waiting():
            await asyncio.sleep(0.05)
        stopping.set()
        self.relay.wakeup.set()
        await asyncio.wait_for(task, 10)

    def scans(self) -> int:
        return sum("FOR UPDATE SKIP LOCKED" in q for q in self.statements)


async def test_handed_rows_go_out_without_a_scan_and_leave_the_outbox(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        await s.relay.publish_batch()  # the start's scan: nothing left from before
        s.relay.hand_over(*await s.commit(b"row 1", b"row 2", b"row 3"))
        scans_before = s.scans()

        assert await s.relay.publish_handed() == 3

        assert s.scans() == scans_before
        assert await s.waiting() == 0
        assert await s.published() == [b"row 1", b"row 2", b"row 3"]

        s.relay.hand_over(*await s.commit(b"row 4"))
        statements_before = len(s.statements)  # after the connection's first use of each statement and its types
        assert await s.relay.publish_handed() == 1
        # The delete is the pass's one round trip: no BEGIN, SET LOCAL or COMMIT around it.
        assert [q.split()[0] for q in s.statements[statements_before:]] == ["DELETE"]
        assert await s.waiting() == 0


async def test_a_row_a_scan_sent_is_not_sent_again_when_handed_over(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        early = await s.commit(b"row 1", b"row 2")
        s.relay.hand_over(*early)  # handed, and a scan (a wakeup, the timer) comes first
        late = await s.commit(b"row 3")
        await s.relay.publish_batch()
        s.relay.hand_over(*late)  # handed after the scan that already sent it

        assert s.relay.handed == {}
        assert await s.waiting() == 0
        assert await s.published() == [b"row 1", b"row 2", b"row 3"]


async def test_rows_the_relay_could_not_keep_go_out_before_later_ones(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        s.relay.MAX_HANDED = 2
        await s.relay.publish_batch()  # the start's scan: nothing left from before
        s.relay.hand_over(*await s.commit(b"row 1", b"row 2", b"row 3"))  # too many to keep: forgotten, left to scans
        s.relay.hand_over(*await s.commit(b"row 4"))

        await s.run_until_empty()

        assert await s.published() == [b"row 1", b"row 2", b"row 3", b"row 4"]


async def test_after_a_failed_send_every_row_goes_out_once_and_in_order(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        s.relay.producer = FailingOnce(s.producer)
        stopping = asyncio.Event()
        task = asyncio.create_task(s.relay.run(stopping))
        s.relay.hand_over(*await s.commit(b"row 1", b"row 2"))
        await asyncio.sleep(0.01)
        s.relay.hand_over(*await s.commit(b"row 3"))
        while await s.waiting():
            await asyncio.sleep(0.05)
        stopping.set()
        s.relay.wakeup.set()
        await asyncio.wait_for(task, 10)

        assert s.relay.producer.failed
        assert await s.published() == [b"row 1", b"row 2", b"row 3"]


async def test_a_busy_relay_still_scans_for_rows_nobody_handed_over(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        await s.relay.publish_batch()  # the start's scan
        await s.commit(b"left by an earlier life")  # in the table, never handed over
        stopping = asyncio.Event()
        s.relay.hand_over(*await s.commit(b"busy"))
        task = asyncio.create_task(s.relay.run(stopping))
        try:
            # A hand-over every 50 ms: the relay never waits a whole second, so only the scan it makes
            # every SCAN_EVERY_S however busy finds the row.
            for i in range(int(2 * OutboxRelay.SCAN_EVERY_S / 0.05) + 40):
                await asyncio.sleep(0.05)
                s.relay.hand_over(*await s.commit(f"busy {i}".encode()))
                if b"left by an earlier life" in await s.published():
                    break
        finally:
            stopping.set()
            s.relay.wakeup.set()
            await asyncio.wait_for(task, 10)

        assert b"left by an earlier life" in await s.published()
        # Out within SCAN_EVERY_S (and 2.5 s to spare), while hand-overs kept coming.
        assert i < (OutboxRelay.SCAN_EVERY_S + 2.5) / 0.05


async def test_the_relay_vacuums_the_outbox_once_it_has_deleted_enough_rows(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        s.relay.VACUUM_AFTER_DELETED, s.relay.VACUUM_EVERY_S = 5, 3600
        await s.relay.publish_batch()  # the start's scan

        s.relay.hand_over(*await s.commit(b"1", b"2", b"3"))
        await s.relay.publish_handed()
        await s.relay.vacuum_when_due()
        assert not any(q.startswith("VACUUM") for q in s.statements)  # 3 deleted: not yet

        for values in ([b"4", b"5"], [b"6", b"7"]):
            s.relay.hand_over(*await s.commit(*values))
            await s.relay.publish_handed()
            await s.relay.vacuum_when_due()
        assert sum(q.startswith("VACUUM") for q in s.statements) == 1  # past 5, then not again within the interval

        async with s.pool.acquire() as conn:  # the connection that vacuumed: its statistics, flushed now
            await conn.execute("SELECT pg_stat_force_next_flush()")
            vacuumed = await conn.fetchval(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass")
        assert vacuumed == 1  # Postgres did it: the service's role may vacuum its outbox
        assert await s.published() == [str(n).encode() for n in range(1, 8)]


async def test_the_relay_does_not_vacuum_while_it_drains_a_backlog(bootstrap, database_url):
    async with Setup(database_url, bootstrap) as s:
        await s.commit(*[str(n).encode() for n in range(5)])  # a backlog: three scans of two rows each
        s.relay.batch_size, s.relay.VACUUM_AFTER_DELETED, s.relay.VACUUM_EVERY_S = 2, 1, 0
        await s.run_until_empty()

        passes = [q for q in s.statements if "FOR UPDATE SKIP LOCKED" in q or q.startswith("VACUUM")]
        first_vacuum = next(i for i, q in enumerate(passes) if q.startswith("VACUUM"))
        assert first_vacuum == 3  # after the third scan, the first that took less than a full batch
        assert await s.published() == [str(n).encode() for n in range(5)]


async def test_the_relay_deletes_what_it_sent_without_waiting_for_the_disk_and_a_batch_commits_durably(
        bootstrap, database_url):
    """A sent row's delete commits asynchronously (lost in a crash, the row is sent again, as after any failure
    between send and delete); the rows a batch commits wait for the disk, as everything else does."""
    async with Setup(database_url, bootstrap) as s:
        async with s.pool.acquire() as conn:
            await conn.execute("""
                CREATE TABLE commit_modes (statement text, mode text);
                CREATE FUNCTION note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  INSERT INTO commit_modes VALUES (TG_OP, current_setting('synchronous_commit'));
                  RETURN NULL;
                END $$;
                CREATE TRIGGER outbox_commit_mode AFTER INSERT OR DELETE ON outbox
                  FOR EACH STATEMENT EXECUTE FUNCTION note_commit_mode();""")
        await s.commit(b"left by an earlier life")
        await s.relay.publish_batch()  # a scan
        s.relay.hand_over(*await s.commit(b"handed"))
        await s.relay.publish_handed()
        async with s.pool.acquire() as conn:
            modes = [tuple(r) for r in await conn.fetch("SELECT statement, mode FROM commit_modes")]
            default = await conn.fetchval("SELECT current_setting('synchronous_commit')")

        assert default == "on"
        assert modes == [("INSERT", "on"), ("DELETE", "off"), ("INSERT", "on"), ("DELETE", "off")]
        assert await s.published() == [b"left by an earlier life", b"handed"]
