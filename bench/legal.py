"""Section 3: legal pipeline latency, submitted -> legal.disclosures.issued, at fixed offered rates.

intake, legal-review and disclosure run as subprocesses (`warden service NAME`)
on one fresh database. An authority is registered and a few suspects are put in
the subscriber store through `platform.subscribers`, as in production. Then, for
each rate, signed auto-approvable requests (a court order for IP addresses and
phone number) are offered open-loop at that rate for `duration` seconds, and
each request's latency is the time from its scheduled moment to reading its
`legal.disclosures.issued` event. Requests are signed before the clock starts.

The generator hands requests to its producer in ticks (`send_tick_s`, 20 ms by
default), a produce request per tick, as a gateway publishing for many
authorities would. Latency counts from each request's schedule, not from its
hand-off, so the wait for the tick is inside the figures and a generator that
falls behind shows as latency (no coordinated omission). The tick matters
because the embedded broker's fetch cost grows with the number of record
batches a partition holds (docs/performance.md, "The embedded broker"): a
generator writing one batch per request would slow the broker down for
reasons that are not Warden's.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from aiokafka import TopicPartition

from warden.authorities import sign_record
from warden.contract.access import groups_of
from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka
from warden.signing import generate_keypair, sign, signed_bytes

from bench import cpu
from bench.cpu import this_process
from bench.loads import produce_all
from bench.stack import ServiceProcess, Stack
from bench.stats import p99_by_window, rate, summary_ms
from bench.wal import WalWindow

SERVICES = ("intake", "legal-review", "disclosure")
SCHEMAS = ("intake", "legal_review", "disclosure")
SUSPECTS = 20
SESSIONS_PER_SUSPECT = 30
SEND_TICK_S = 0.020
CPU_WINDOW_S = 10.0
LATENCY_WINDOW_S = 10.0  # p99 per slice of the schedule: does latency grow as a step goes on?
# The load generator's producer and the reader of the packages are the instrument: the reader's fetch
# wait is in every latency reported (Tansu answers up to half a wait after a record arrives), and the producer's
# linger shapes what the services receive. Both are fixed here, at the values v1's bench used, so the
# side-by-side runs against v1 measure every tree alike, whatever the services' own Kafka settings.
READER_FETCH_MAX_WAIT_MS = 50
OFFER_LINGER_MS = 5
ISSUED = "legal.disclosures.issued"


def authority(run_id: str) -> dict:
    keys = generate_keypair()
    return {"authority_id": f"bench-court-{run_id}", "name": "Bench court", "country": "FR", "kind": "court",
            "status": "active", "public_key": keys["public_key"], "private_key": keys["private_key"]}


def suspect(run_id: str, n: int) -> dict:
    return {"account_id": f"bench-{run_id}-acct-{n}", "username": f"bench_{run_id}_user_{n}",
            "phone_number": f"+3361{n:07d}"}


def registry_record(auth: dict, registry_key: str, now: datetime) -> tuple[bytes, bytes, list]:
    """The court's registry record signed with the operator's `registry_key`: (key, value, headers)."""
    registered = sign_record({k: v for k, v in auth.items() if k != "private_key"} | {"updated_at": now.isoformat()},
                             registry_key)
    return (auth["authority_id"].encode(), *encode_structured(new_event(
        "warden.legal.authority.registered.v1", "/warden/cli", registered)))


def subscriber_records(run_id: str, now: datetime) -> list[tuple[bytes, bytes, list]]:
    """The suspects' accounts and their sessions as the platform feeds them: (key, value, headers)."""
    feed = []
    for n in range(SUSPECTS):
        who = suspect(run_id, n)
        feed.append(("warden.subscriber.account.updated.v1", who["account_id"], {
            "account_id": who["account_id"], "username": who["username"], "phone_number": who["phone_number"],
            "country": "FR", "updated_at": (now - timedelta(days=200)).isoformat()}))
        feed += [("warden.subscriber.session.observed.v1", who["account_id"], {
            "account_id": who["account_id"], "ip": f"203.0.{n}.{s + 1}",
            "observed_at": (now - timedelta(days=2 + s * 2, minutes=n)).isoformat()})
            for s in range(SESSIONS_PER_SUSPECT)]
    return [(key.encode(), *encode_structured(new_event(t, "/bench/platform", data))) for t, key, data in feed]


def request_event(auth: dict, who: dict, n: int, run_id: str) -> tuple[str, bytes, bytes, list]:
    now = datetime.now(timezone.utc)
    data = {
        "request_id": f"BENCH-{run_id}-{n}-{uuid.uuid4().hex[:6]}", "authority_id": auth["authority_id"],
        "instrument": {"type": "court_order", "reference": f"RG 26/{n:05d}", "issued_by": "Investigating judge",
                       "issued_at": (now - timedelta(days=2)).isoformat(),
                       "expires_at": (now + timedelta(days=60)).isoformat()},
        "suspect": {"username": "@" + who["username"], "phone_number": who["phone_number"]},
        "offense": {"category": "drug_trafficking", "statute": "Code penal 222-37",
                    "description": "Sale of narcotics through a public channel"},
        "data_categories": ["ip_addresses", "phone_number"],
        "period": {"start": (now - timedelta(days=90)).isoformat(), "end": (now - timedelta(days=1)).isoformat()},
        "emergency": False, "nondisclosure_until": None,
    }
    data["signature"] = sign(signed_bytes(data), auth["private_key"])
    value, headers = encode_structured(new_event("warden.legal.request.submitted.v1", "/bench/gateway", data))
    return data["request_id"], auth["authority_id"].encode(), value, headers


async def _until(probe, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _prepare(stack: Stack, database_url: str, run_id: str) -> dict:
    auth = authority(run_id)
    now = datetime.now(timezone.utc)
    await produce_all(stack.bootstrap, "legal.authorities",
                      [registry_record(auth, stack.keys["registry"]["private_key"], now)])
    await produce_all(stack.bootstrap, "platform.subscribers", subscriber_records(run_id, now))
    conn = await asyncpg.connect(database_url)
    try:
        async def known() -> bool:
            for schema in SCHEMAS:
                try:
                    if not await conn.fetchval(f"SELECT 1 FROM {schema}.authorities WHERE authority_id = $1",
                                               auth["authority_id"]):
                        return False
                except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                    return False
            return True

        async def stored() -> bool:
            return await conn.fetchval("SELECT count(*) FROM disclosure.sessions WHERE account_id LIKE $1",
                                       f"bench-{run_id}-acct-%") >= SUSPECTS * SESSIONS_PER_SUSPECT
        await _until(known, 60, "the authority projections")
        await _until(stored, 60, "the subscriber store")
    finally:
        await conn.close()
    return auth


async def start_at_the_end(bootstrap: str, group_prefix: str, services: tuple[str, ...] = SERVICES) -> None:
    """Commit the step's new consumer groups (each service's, and its views' where it has views:
    access.groups_of, the groups it is granted and joins) at the end of their topics.

    On a shared broker the topics hold earlier steps' and other runs' events, which a new group
    would otherwise read from the start (Warden's groups begin at the earliest offset). Everything
    a step needs (its authority, its suspects, its requests) is published after this. Each group
    is committed at the end of every topic its service consumes: a group's offsets for a topic it
    does not read are never looked at.
    """
    for service, group in ((s, g) for s in services for g in groups_of(group_prefix, s)):
        topics = [t.name for t in TOPICS.values() if service in t.consumers]
        consumer = kafka.consumer(bootstrap, group)
        await consumer.start()
        try:
            partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
            consumer.assign(partitions)
            await consumer.commit(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()


class IssuedWatcher:
    """Reads legal.disclosures.issued from its end; notes when each request's package arrives."""

    def __init__(self, bootstrap: str):
        self.consumer = kafka.consumer(bootstrap, None, auto_offset_reset="latest",
                                       fetch_max_wait_ms=READER_FETCH_MAX_WAIT_MS)
        self.arrived: dict[str, float] = {}
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(ISSUED)
        if not parts:
            await self.consumer._client.force_metadata_update()
            parts = self.consumer.partitions_for_topic(ISSUED)
        tps = [TopicPartition(ISSUED, p) for p in parts]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            at = time.perf_counter()
            for records in batch.values():
                for r in records:
                    try:
                        self.arrived.setdefault(json.loads(r.value)["data"]["request_id"], at)
                    except (ValueError, KeyError, TypeError):
                        pass

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


HOPS = (("intake", "legal.requests.submitted", "legal.requests.received"),
        ("legal-review", "legal.requests.received", "legal.requests.decided"),
        ("disclosure", "legal.requests.decided", ISSUED))


def _request_id(event: dict) -> str | None:
    data = event.get("data") or {}
    return data.get("request_id") or (data.get("request") or {}).get("request_id")


async def _timestamps(bootstrap: str, topic: str, wanted: set[str]) -> dict[str, int]:
    """request id -> the record timestamp (ms; CreateTime: when the producer, i.e. the relay, sent it)."""
    consumer = kafka.consumer(bootstrap, None, auto_offset_reset="latest", fetch_max_wait_ms=500)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, int] = {}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    try:
                        request_id = _request_id(json.loads(r.value))
                    except (ValueError, TypeError, AttributeError):
                        continue
                    if request_id in wanted:
                        found.setdefault(request_id, r.timestamp)
        return found
    finally:
        await consumer.stop()


async def stamped_figures(bootstrap: str, scheduled_at: dict[str, float]) -> dict:
    """What the record timestamps say, with no reader's fetch wait in it.

    `hops`: per service, from the record it consumed to the record it produced (consume,
    incl. the broker's fetch wait, + transaction + outbox relay). `to_issued_record`: from
    each request's scheduled moment (`scheduled_at`, wall-clock seconds) to its package's
    record, i.e. when disclosure's relay produced it. The headline figures are when a
    reader saw it: that adds the reader's hop, up to half its 50 ms fetch wait on Tansu, which
    looks for new records half a wait into a parked fetch (docs/performance.md)."""
    topics = {t for _, src, dst in HOPS for t in (src, dst)}
    stamps = {t: await _timestamps(bootstrap, t, set(scheduled_at)) for t in topics}
    hops = {}
    for service, src, dst in HOPS:
        spans = [(stamps[dst][r] - stamps[src][r]) / 1000 for r in scheduled_at
                 if r in stamps[src] and r in stamps[dst]]
        hops[service] = summary_ms(spans)
    issued = stamps[ISSUED]
    return {"hops": hops,
            "to_issued_record": summary_ms([issued[r] / 1000 - t for r, t in scheduled_at.items() if r in issued])}


async def offer(bootstrap: str, events: list[tuple[str, bytes, bytes, list]], per_s: float,
                watcher: IssuedWatcher, drain_s: float, send_tick_s: float = SEND_TICK_S
                ) -> tuple[dict, dict[str, float]]:
    """The figures as a reader saw the packages arrive, and each request's scheduled moment (wall clock)."""
    producer = kafka.producer(bootstrap, linger_ms=OFFER_LINGER_MS)
    await producer.start()
    sent: dict[str, float] = {}  # request id -> its scheduled moment
    futures = []
    try:
        start = time.perf_counter()
        wall_clock_of = time.time() - start  # + a perf_counter moment: that moment as record timestamps give it
        for i, (request_id, key, value, headers) in enumerate(events):
            due = start + i / per_s
            delay = due - time.perf_counter()
            if delay > 0.002:
                await asyncio.sleep(delay + send_tick_s)  # wakes for this one and all due within the tick
            sent[request_id] = due
            futures.append(await producer.send("legal.requests.submitted", value, key=key, headers=headers))
        offered_s = time.perf_counter() - start
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    deadline = time.perf_counter() + drain_s
    while time.perf_counter() < deadline and not all(r in watcher.arrived for r in sent):
        await asyncio.sleep(0.05)
    latencies = [watcher.arrived[r] - t for r, t in sent.items() if r in watcher.arrived]
    done = [watcher.arrived[r] for r in sent if r in watcher.arrived]
    span = (max(done) - start) if done else 0.0
    by_schedule = [(t - start, watcher.arrived[r] - t) for r, t in sent.items() if r in watcher.arrived]
    return {"target_per_s": per_s, "offered_per_s": rate(len(sent), offered_s), "sent": len(sent),
            "issued": len(done), "held_per_s": rate(len(done), span), **summary_ms(latencies),
            "p99_ms_by_window": p99_by_window(by_schedule, LATENCY_WINDOW_S), "latency_window_s": LATENCY_WINDOW_S
            }, {r: t + wall_clock_of for r, t in sent.items()}


async def run(stack: Stack, rates: list[float], duration: float, logs: Path, profile: Path | None = None,
              label: str = "legal", send_tick_s: float = SEND_TICK_S, wal: bool = False) -> dict:
    """Each rate on its own services and database, and on its own broker when it is the embedded one.

    The embedded broker's fetch cost grows with every batch it holds (section `broker`), so on a
    shared one a step would pay for the steps before it; a real Kafka does not. On an external
    stack the steps share the broker and get a fresh database each. `wal`: each step's WAL per request,
    by table (bench/wal.py), read once its figures are taken.
    """
    results: dict = {"steps": [], "peak_rss_mb": {}, "fresh_broker_per_step": stack.embedded}
    for i, per_s in enumerate(rates):
        if stack.embedded:
            await asyncio.to_thread(stack.fresh_broker)
        step = await _one_step(stack, per_s, duration, logs, profile, f"{label}{i}", f"{stack.run_id}s{i}",
                               send_tick_s, wal)
        results["steps"].append(step)
        for name, mb in step["peak_rss_mb"].items():
            results["peak_rss_mb"][name] = max(results["peak_rss_mb"].get(name, 0), mb)
        print(f"  legal @ {per_s:g}/s: {step}", flush=True)
    return results


async def _one_step(stack: Stack, per_s: float, duration: float, logs: Path, profile: Path | None, label: str,
                    run_id: str, send_tick_s: float, wal: bool = False) -> dict:
    database_url = await stack.new_database(label)
    scopes = contextlib.AsyncExitStack()
    if not stack.embedded:
        await start_at_the_end(stack.bootstrap, f"bench-{run_id}")
    procs = [ServiceProcess(name, stack.bootstrap, database_url, f"bench-{run_id}", logs) for name in SERVICES]
    watcher = IssuedWatcher(stack.bootstrap)
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready()
        auth = await _prepare(stack, database_url, run_id)
        await watcher.start()
        warm_up = [request_event(auth, suspect(run_id, i % SUSPECTS), i, run_id) for i in range(20)]
        await offer(stack.bootstrap, warm_up, 10, watcher, 60)  # caches, prepared statements, connections
        count = int(per_s * duration)
        events = [request_event(auth, suspect(run_id, i % SUSPECTS), i, run_id) for i in range(20, 20 + count)]
        for p in procs:
            p.reset_peak()
            if profile is not None:
                p.profile(profile / f"{p.name}-{int(per_s)}.svg", seconds=duration)
                p.profile(profile / f"{p.name}-{int(per_s)}.txt", seconds=duration)
        groups = lambda: {**stack.server_pids(), **{p.name: [p.process.pid] for p in procs},  # noqa: E731
                          "load generator": this_process()}
        window = min(CPU_WINDOW_S, duration / 2)
        first = asyncio.create_task(cpu.measure(groups, window))
        last = asyncio.create_task(cpu.measure(groups, window, delay=duration - window))
        wal_window = await scopes.enter_async_context(WalWindow(database_url)) if wal else None
        spent_before = cpu.cpu_seconds(groups())
        step, scheduled_at = await offer(stack.bootstrap, events, per_s, watcher, drain_s=max(30.0, duration),
                                         send_tick_s=send_tick_s)
        step["cpu_ms_per_request"] = cpu.ms_per_item(spent_before, cpu.cpu_seconds(groups()), step["issued"])
        step["cpu_first_s"], step["cpu_last_s"] = await first, await last
        step["cpu_window_s"] = window
        step.update(await stamped_figures(stack.bootstrap, scheduled_at))
        step["peak_rss_mb"] = {p.name: round(p.peak_rss / 2**20, 1) for p in procs}
        if wal_window is not None:
            step["wal"] = await wal_window.written(step["issued"])
    finally:
        await scopes.aclose()
        await watcher.stop()
        for p in procs:
            p.stop()
    await stack.drop_database(database_url)
    return step
