"""Runs one service: migrate, connect, consume, relay, serve HTTP; drain on SIGTERM."""
from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer

from warden.runtime import kafka, metrics, tracing
from warden.runtime.consumer import CatchUp, CatchUpIncomplete, ConsumerLoop
from warden.runtime.backoff import Backoff
from warden.runtime.database import is_transient, open_database
from warden.runtime.http import build_app, build_server
from warden.runtime.inbox import prune_inbox
from warden.runtime.logs import configure_logging
from warden.runtime.outbox import OutboxRelay
from warden.runtime.service import Service
from warden.runtime.settings import ConfigurationError, Settings, trusted_proxy_list
from warden.runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# Where each service declares itself; `warden service NAME` and `warden up` start them from here.
SERVICE_MODULES = {
    "intake": "intake.service",
    "legal-review": "legal_review.service",
    "disclosure": "disclosure.service",
    "moderation": "moderation.service",
}


def load_service(name: str) -> Service:
    if name not in SERVICE_MODULES:
        raise KeyError(name)
    return importlib.import_module(SERVICE_MODULES[name]).SERVICE


def available_services() -> list[str]:
    names = []
    for name, module in SERVICE_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        names.append(name)
    return names


class Runtime:
    """A running service: its pool, Kafka clients, consumer loops (its effects' and, if it has views, its
    views': Service.consumers), outbox relay and HTTP server."""

    def __init__(self, service: Service, settings: Settings):
        self.service = service
        self.settings = settings
        self.stopping = asyncio.Event()
        self.pool: asyncpg.Pool | None = None
        self.producer = kafka.producer(settings.kafka_bootstrap_servers, settings.kafka_security)
        self.effects, self.views = service.consumers()
        self.consumer = kafka.consumer(settings.kafka_bootstrap_servers, settings.group_id(service.name),
                                       settings.kafka_security, fetch_max_wait_ms=settings.fetch_max_wait_ms)
        self.views_consumer = None if self.views is None else kafka.consumer(
            settings.kafka_bootstrap_servers, settings.views_group_id(service.name), settings.kafka_security,
            fetch_max_wait_ms=settings.fetch_max_wait_ms)
        self.relay: OutboxRelay | None = None
        self.loop: ConsumerLoop | None = None
        self.views_loop: ConsumerLoop | None = None
        self.catch_up_reader: AIOKafkaConsumer | None = None
        self.database_ok = False
        self.http_port: int | None = None

    def unit_of_work(self) -> UnitOfWork:
        """A transaction whose emitted events reach the outbox, are counted and handed to the relay on commit
        (ServiceContext); NotReady until the database is reached."""
        hand_over = self.relay.hand_over if self.relay is not None and self.settings.outbox_relay else None
        return UnitOfWork(self.service.name, self.pool, hand_over)

    async def catch_up(self) -> None:
        """The `catch_up_first` subscriptions read to their end before the consumer group starts, and again for
        a batch that meets an event rejected as UnknownYet (consumer.CatchUp): its reader stays open."""
        topics = [sub.topic for sub in self.service.subscriptions if sub.catch_up_first]
        if not topics:
            return
        s = self.settings
        self.catch_up_reader = kafka.consumer(s.kafka_bootstrap_servers, None, s.kafka_security,
                                              fetch_max_wait_ms=s.fetch_max_wait_ms)
        await kafka.start_with_retry(self.catch_up_reader, "catch-up reader")
        self.loop.processor.catch_up = CatchUp(self.loop, self.catch_up_reader, topics, self.stopping)
        try:
            read = await self.loop.processor.catch_up()
        except CatchUpIncomplete:
            if not self.stopping.is_set():
                raise
            return
        log.info("caught up before consuming", extra={"topics": topics, "records": read})

    def readiness(self) -> dict[str, bool]:
        loops = [self.loop] if self.views is None else [self.loop, self.views_loop]
        return {
            "consumer_group_joined": all(loop is not None and loop.membership.joined for loop in loops),
            "database": self.database_ok and all(loop is not None and loop.database_ok for loop in loops),
            "kafka_producer": bool(self.relay and self.relay.healthy),
        }

    async def connect_database(self) -> None:
        s = self.settings
        # A connection per batch in flight beyond one, and one for the views' batches.
        pool_size = s.db_pool_size + self.service.in_flight(s) - 1 + (self.views is not None)
        self.pool = await open_database(s.database_url, self.service.schema, self.service.migration_sets,
                                        pool_size, Backoff(s.retry_initial_s, s.retry_max_s), self.stopping,
                                        migrate_first=s.migrate_on_start)
        self.database_ok = True

    async def run(self) -> None:
        s = self.settings
        self.service.check(s)
        app = build_app(self.service.name, self.readiness)
        if self.service.routes is not None:
            self.service.routes(app, self)
        server = build_server(app, s.http_host, s.http_port, trusted_proxy_list(s.trusted_proxies))
        http_task = asyncio.create_task(server.serve(), name="http")
        await self.connect_database()
        assert self.pool is not None
        await kafka.start_with_retry(self.producer, "producer")
        self.relay = OutboxRelay(self.service.name, self.pool, self.producer, batch_size=s.outbox_batch_size,
                                 retry_initial_s=s.retry_initial_s, retry_max_s=s.retry_max_s)
        self.loop = self._consumer_loop(self.effects, self.consumer, self.service.in_flight(s))
        if self.views is not None:
            self.views_loop = self._consumer_loop(self.views, self.views_consumer, 1)
        try:
            await self.catch_up()
            self.loop.subscribe()
            await kafka.start_with_retry(self.consumer, "consumer")
            if self.views_loop is not None:
                self.views_loop.subscribe()
                await kafka.start_with_retry(self.views_consumer, "views consumer")
        except BaseException:
            await self._close_catch_up_reader()
            raise
        groups = [s.group_id(self.service.name)] + ([s.views_group_id(self.service.name)] if self.views else [])
        log.info("service started", extra={"group_ids": groups})
        tasks = [asyncio.create_task(self.loop.run(self.stopping), name="consumer"),
                 asyncio.create_task(self._watch_database(), name="db-health")]
        if self.views_loop is not None:
            tasks.append(asyncio.create_task(self.views_loop.run(self.stopping), name="views-consumer"))
        if s.outbox_relay:
            tasks.append(asyncio.create_task(self.relay.run(self.stopping), name="outbox"))
        tasks.append(asyncio.create_task(prune_inbox(
            self.service.name, self.pool, self.stopping, retention_days=s.inbox_retention_days,
            interval_s=s.inbox_prune_interval_s, batch_size=s.inbox_prune_batch_size), name="inbox-pruning"))
        tasks += [asyncio.create_task(job(self), name=job.__name__) for job in self.service.background]
        try:
            await self._until_stopped_or_failed(tasks)
        finally:
            self.stopping.set()
            self.relay.wakeup.set()
            await asyncio.wait(tasks, timeout=15)
            for task in tasks:
                task.cancel()
            await close_within("consumer", self.consumer.stop())  # leaves the group: partitions move on at once
            if self.views_consumer is not None:
                await close_within("views consumer", self.views_consumer.stop())
            await self._close_catch_up_reader()
            await close_within("producer", self.producer.stop())
            await close_within("database pool", self.pool.close(), if_not_closed=self.pool.terminate)
            server.should_exit = True
            await asyncio.wait([http_task], timeout=5)
            log.info("service stopped")

    def _consumer_loop(self, reads: Service, consumer: AIOKafkaConsumer, batches_in_flight: int) -> ConsumerLoop:
        s = self.settings
        return ConsumerLoop(reads, self.pool, consumer, batch_max_records=self.service.batch_size(s),
                            poll_timeout_ms=s.poll_timeout_ms, retry_initial_s=s.retry_initial_s,
                            retry_max_s=s.retry_max_s, commit_interval_s=s.commit_interval_ms / 1000,
                            batches_in_flight=batches_in_flight,
                            on_committed=self.relay.hand_over if s.outbox_relay else None, settings=s)

    async def _close_catch_up_reader(self) -> None:
        if self.catch_up_reader is not None:
            await close_within("catch-up reader", self.catch_up_reader.stop())
            self.catch_up_reader = None

    async def _until_stopped_or_failed(self, tasks: list[asyncio.Task]) -> None:
        stop_waiter = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([stop_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop_waiter.cancel()
        for task in done:
            if task is not stop_waiter and task.exception() is not None:
                raise task.exception()

    async def _watch_database(self) -> None:
        while not self.stopping.is_set():
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    await conn.fetchval("SELECT 1", timeout=2)
                self.database_ok = True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.database_ok = False
            metrics.READY.set(int(all(self.readiness().values())))
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=2)
            except asyncio.TimeoutError:
                pass


async def close_within(what: str, closing: Awaitable, timeout: float = 5.0,
                       if_not_closed: Callable[[], None] | None = None) -> None:
    """Shutdown must end within the orchestrator's grace period: a client that can no longer
    reach its server (broker or database gone) gets `timeout` s, then it is left behind.
    `if_not_closed` runs when it timed out or failed (a pool is terminated instead)."""
    try:
        await asyncio.wait_for(closing, timeout)
    except (Exception, asyncio.CancelledError) as exc:  # a client's own cancelled task surfaces here
        log.warning("client did not close cleanly", extra={"client": what, "error_type": type(exc).__name__})
        if if_not_closed is not None:
            if_not_closed()


def run_service(name: str, settings: Settings | None = None) -> None:
    """Run a service (its module's `SERVICE`, run by `Runtime`) until SIGTERM/SIGINT."""
    settings = settings or Settings()
    configure_logging(name, settings.log_level)
    service = load_service(name)
    service.check(settings)  # before any connection: a misconfigured service says so and stops
    tracing.configure_tracing(name)  # only if the OTEL_* variables ask for it
    settle_heap()
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            runner.run(_serve_until_signalled(service, settings))
    except ConfigurationError:
        raise  # the command says what to set
    except Exception as exc:
        # One JSON record with the cause (the traceback in its `exc_info` field), then exit 1.
        log.critical("service stopped on an error", exc_info=True,
                     extra={"error_type": type(exc).__name__, "error": str(exc)[:500]})
        raise SystemExit(1) from None


# Allocations of container objects between two young-generation collections (CPython's default: 700).
YOUNG_GENERATION_OBJECTS = 50_000


def settle_heap() -> None:
    """Keep what the imports built (some 10^5 objects: FastAPI, pydantic's schemas, the service) out of
    every later garbage collection, and collect the young generation less often.

    A full collection walks every tracked object, and under load one ran every second or two, each
    taking 120-210 ms of a busy worker (measured on moderation in the bench); frozen, those objects
    are no longer walked (5-8 ms). They are still freed when their last reference goes; only a
    reference cycle among them would stay, and the collection first clears what is already garbage.

    A batch of a thousand events builds some 10^5 short-lived containers (envelopes, payloads, rows)
    that are alive until the batch commits: at CPython's default threshold each young collection
    walks the batch's live objects again and again, a fifth of a busy worker's CPU (moderation,
    `python -m bench.moderation_cost`). Collected every YOUNG_GENERATION_OBJECTS allocations
    instead, cyclic garbage waits a little longer (a few MB at most) to be freed; reference counting
    frees everything else at once, as before."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_OBJECTS, middle, old)


def _loop_factory(settings: Settings):
    if settings.event_loop == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    return None  # asyncio's default loop


async def _serve_until_signalled(service: Service, settings: Settings) -> None:
    # Kafka clients bind to the running loop: build everything inside it.
    runtime = Runtime(service, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stopping.set)
    await runtime.run()
