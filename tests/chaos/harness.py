"""The chaos stack: its own broker (behind a cuttable proxy) and Postgres, every service as a process,
a steady load of requests, subscriber events and reports, and the books that say what must come out.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka
from tests.support.kafka import read_topic
from tests.support.processes import ServiceProcess, moderation_available
from tests.support.requests import new_authority, request_data, signed

FINAL = {"invalid", "rejected", "disclosed", "no_data", "preserved"}
REVIEW_TOKENS = {"chaos-alice": {"reviewer": "alice", "role": "reviewer"},
                 "chaos-carol": {"reviewer": "carol", "role": "supervisor"}}
MODERATION_TOKENS = {"chaos-mod": {"name": "maria", "roles": ["moderator", "appeals"]}}
REQUEST_KINDS = ("approve", "approve", "approve", "approve", "subpoena", "forged", "speech")
EXPECTED_FINAL = {"approve": "disclosed", "speech": "disclosed", "subpoena": "rejected", "forged": "invalid"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def services_under_test() -> list[str]:
    names = ["intake", "legal-review", "disclosure"]
    if moderation_available():
        names.append("moderation")
    return names


@dataclass
class Ledger:
    """Everything the load generator sent (and what each should become)."""
    requests: dict[str, str] = field(default_factory=dict)        # request_id -> kind
    accounts: set[str] = field(default_factory=set)               # account.updated sent
    sessions: Counter = field(default_factory=Counter)            # account_id -> session.observed sent
    reports: set[tuple[str, str]] = field(default_factory=set)    # (reporter_id, report_id)
    events_sent: int = 0
    api_decisions: int = 0

    def merge_counts(self) -> dict[str, int]:
        return {"requests": len(self.requests), "subscriber_accounts": len(self.accounts),
                "subscriber_sessions": sum(self.sessions.values()), "reports": len(self.reports),
                "events_sent": self.events_sent, "review_api_decisions": self.api_decisions}


class Load:
    """A steady stream into the inbound topics; pausable (the broker outage) and stoppable."""

    def __init__(self, bootstrap: str, authority: dict[str, Any], suspects: list[dict[str, str]], ledger: Ledger,
                 *, per_second: float = 4.0, with_reports: bool = True):
        self.bootstrap = bootstrap
        self.authority = authority
        self.suspects = suspects
        self.ledger = ledger
        self.per_second = per_second
        self.with_reports = with_reports
        self.paused = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self.contents = [f"chaos-chan-{uuid.uuid4().hex[:6]}" for _ in range(15)]
        self.rng = random.Random()

    async def start(self) -> None:
        self.producer = kafka.producer(self.bootstrap, request_timeout_ms=60000)
        await self.producer.start()
        if self.with_reports:  # the platform describes the reported channels, so their reports are scored
            at = utcnow().isoformat()
            for content_id in self.contents:
                await self.send("platform.content", "warden.platform.content.updated.v1", {
                    "content_id": content_id, "kind": "channel", "owner_account_id": f"owner-{content_id}",
                    "title": "Cheap pills", "text": None, "language": None, "public_in_search": True,
                    "created_at": at, "updated_at": at, "media": []})

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, topic: str, event_type: str, data: dict[str, Any], source: str = "/chaos") -> None:
        value, headers = encode_structured(new_event(event_type, source, data))
        key = TOPICS[topic].key_of(data)
        await self.producer.send_and_wait(topic, value, key=key.encode() if key else None, headers=headers)
        self.ledger.events_sent += 1

    async def account(self, account_id: str, username: str | None, phone: str | None) -> None:
        await self.send("platform.subscribers", "warden.subscriber.account.updated.v1", {
            "account_id": account_id, "username": username, "phone_number": phone, "country": "FR",
            "updated_at": (utcnow() - timedelta(days=200)).isoformat()})
        self.ledger.accounts.add(account_id)

    async def session(self, account_id: str) -> None:
        ip = f"198.51.{self.rng.randrange(0, 255)}.{self.rng.randrange(1, 255)}"
        at = utcnow() - timedelta(days=self.rng.uniform(2, 80), microseconds=self.rng.randrange(10**6))
        await self.send("platform.subscribers", "warden.subscriber.session.observed.v1",
                        {"account_id": account_id, "ip": ip, "observed_at": at.isoformat()})
        self.ledger.sessions[account_id] += 1

    async def request(self, kind: str) -> str:
        suspect = self.rng.choice(self.suspects)
        overrides: dict[str, Any] = {"suspect": {"account_id": suspect["account_id"]}}
        if kind == "subpoena":
            overrides["instrument"] = dict(request_data(self.authority)["instrument"], type="subpoena")
        if kind == "speech":
            overrides["offense"] = {"category": "extremism_speech", "statute": "Art. 421-2-5",
                                    "description": "Channel posts"}
        data = signed(request_data(self.authority, **overrides), self.authority["private_key"])
        if kind == "forged":
            data["signature"] = signed(data, new_authority()["private_key"])["signature"]
        await self.send("legal.requests.submitted", "warden.legal.request.submitted.v1", data)
        self.ledger.requests[data["request_id"]] = kind
        return data["request_id"]

    async def report(self) -> None:
        report_id, reporter = f"rep-{uuid.uuid4().hex[:12]}", f"user-{self.rng.randrange(200)}"
        content_id = self.rng.choice(self.contents)
        await self.send("moderation.reports.submitted", "warden.moderation.report.submitted.v1", {
            "report_id": report_id, "reporter_id": reporter, "reported_at": utcnow().isoformat(),
            "surface": "search", "content": {"kind": "channel", "id": content_id, "owner_account_id": None,
                                             "title": "Cheap pills", "text": None},
            "reason": self.rng.choice(["drugs", "scam", "spam", "illegal_goods"]), "comment": "seen in search"})
        self.ledger.reports.add((reporter, report_id))

    async def tick(self) -> None:
        await self.request(self.rng.choice(REQUEST_KINDS))
        noise = f"chaos-acct-{uuid.uuid4().hex[:10]}"
        await self.account(noise, None, None)
        for _ in range(3):
            await self.session(self.rng.choice([noise, self.rng.choice(self.suspects)["account_id"]]))
        if self.with_reports:
            for _ in range(2):
                await self.report()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.paused.is_set():
                await asyncio.sleep(0.1)
                continue
            started = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(0.0, 1 / self.per_second - (time.monotonic() - started)))


class Reviewers:
    """Two humans clearing legal review's queue through the API; they retry while the service is down."""

    def __init__(self, legal_review: ServiceProcess, ledger: Ledger):
        self.service = legal_review
        self.ledger = ledger
        self.paused = asyncio.Event()
        self.failures = Counter()

    async def decide(self, http: httpx.AsyncClient, case_id: str, token: str) -> int:
        response = await http.post(f"{self.service.url}/review/cases/{case_id}/decisions",
                                   json={"action": "approve", "reason": "Specific incitement, proportionate"},
                                   headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 200:
            self.ledger.api_decisions += 1
        return response.status_code

    async def clear_queue(self, http: httpx.AsyncClient) -> None:
        response = await http.get(f"{self.service.url}/review/cases", params={"limit": 1000},
                                  headers={"Authorization": "Bearer chaos-alice"})
        if response.status_code != 200:  # 503 while its database is away; a 500 would be a bug
            self.failures[response.status_code] += 1
            return
        for case in response.json():
            for token in REVIEW_TOKENS:
                status = await self.decide(http, case["case_id"], token)
                # 403: this reviewer already approved (a retry after a kill); 409: closed already.
                if status not in (200, 403, 409):
                    self.failures[status] += 1

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while not stop.is_set():
                if not self.paused.is_set():
                    try:
                        await self.clear_queue(http)
                    except httpx.HTTPError as exc:  # killed, restarting, or its database is away
                        self.failures[type(exc).__name__] += 1
                await asyncio.sleep(0.5)


async def db_fetch(database_url: str, query: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@dataclass
class Books:
    """What the bus and the databases hold about the ledger, and every broken promise found."""
    final_status: dict[str, list[tuple[str, str]]]   # request_id -> [(status, event id)] distinct
    packages: dict[str, set[str]]                     # case_id -> distinct disclosure event ids
    approvals: dict[str, set[str]]                    # case_id -> distinct approval event ids
    case_of: dict[str, str]                           # request_id -> case_id
    redelivered: int                                  # same event id seen more than once (allowed)
    stored_accounts: set[str]
    stored_sessions: Counter
    stored_reports: Counter
    package_rows: Counter
    delistings: dict[str, set[str]]

    def problems(self, ledger: Ledger) -> dict[str, list]:
        lost, duplicated = [], []
        for request_id, kind in ledger.requests.items():
            finals = self.final_status.get(request_id, [])
            if not finals:
                lost.append(("no final status", request_id, kind))
            elif len(finals) > 1:
                duplicated.append(("final statuses", request_id, finals))
            elif finals[0][0] != EXPECTED_FINAL[kind]:
                lost.append(("wrong final status", request_id, kind, finals[0][0]))
        for case_id, events in self.approvals.items():
            if len(events) > 1:
                duplicated.append(("approvals", case_id, len(events)))
            if len(self.packages.get(case_id, ())) > 1 or self.package_rows[case_id] > 1:
                duplicated.append(("packages", case_id, len(self.packages[case_id])))
        for request_id, kind in ledger.requests.items():
            case_id = self.case_of.get(request_id)
            if EXPECTED_FINAL[kind] == "disclosed" and case_id and not self.packages.get(case_id):
                lost.append(("no package", request_id))
        lost += [("account", a) for a in ledger.accounts - self.stored_accounts]
        lost += [("sessions", a, n, self.stored_sessions[a]) for a, n in ledger.sessions.items()
                 if self.stored_sessions[a] < n]
        for key in ledger.reports:
            if self.stored_reports[key] == 0:
                lost.append(("report", key))
            elif self.stored_reports[key] > 1:
                duplicated.append(("report", key))
        duplicated += [("delisting", c, len(e)) for c, e in self.delistings.items() if len(e) > 1]
        return {"lost": lost, "duplicated": duplicated}


async def read_books(bootstrap: str, database_url: str, ledger: Ledger) -> Books:
    seen_ids: Counter = Counter()
    final: dict[str, dict[str, str]] = defaultdict(dict)
    case_of: dict[str, str] = {}
    for record in await read_topic(bootstrap, "legal.requests.status"):
        event = json.loads(record.value)
        data = event["data"]
        if data["request_id"] not in ledger.requests:
            continue
        seen_ids[event["id"]] += 1
        if data.get("case_id"):
            case_of[data["request_id"]] = data["case_id"]
        if data["status"] in FINAL:
            final[data["request_id"]][event["id"]] = data["status"]
    ours = set(case_of.values())
    approvals: dict[str, set[str]] = defaultdict(set)
    for record in await read_topic(bootstrap, "legal.requests.decided"):
        event = json.loads(record.value)
        if event["data"]["case_id"] in ours and event["type"].endswith("approved.v1"):
            approvals[event["data"]["case_id"]].add(event["id"])
            seen_ids[event["id"]] += 1
    packages: dict[str, set[str]] = defaultdict(set)
    for record in await read_topic(bootstrap, "legal.disclosures.issued"):
        event = json.loads(record.value)
        if event["data"]["case_id"] in ours:
            packages[event["data"]["case_id"]].add(event["id"])
            seen_ids[event["id"]] += 1
    delistings: dict[str, set[str]] = defaultdict(set)
    if moderation_available():
        for record in await read_topic(bootstrap, "search.delistings"):
            event = json.loads(record.value)
            if event["type"].endswith("delisted.v1") and str(event["data"].get("content_id", "")).startswith("chaos-"):
                delistings[event["data"]["content_id"]].add(event["id"])
                seen_ids[event["id"]] += 1
    accounts = {r["account_id"] for r in await db_fetch(
        database_url, "SELECT account_id FROM disclosure.accounts WHERE account_id = ANY($1)", list(ledger.accounts))}
    sessions = Counter({r["account_id"]: r["n"] for r in await db_fetch(
        database_url, "SELECT account_id, count(*) AS n FROM disclosure.sessions GROUP BY account_id")})
    rows = Counter({r["case_id"]: r["n"] for r in await db_fetch(
        database_url, "SELECT case_id, count(*) AS n FROM disclosure.packages GROUP BY case_id")})
    reports: Counter = Counter()
    if moderation_available():
        for r in await db_fetch(database_url, "SELECT reporter_id, report_id FROM moderation.reports"):
            reports[(r["reporter_id"], r["report_id"])] += 1
    return Books(
        final_status={rid: sorted((s, i) for i, s in by_id.items()) for rid, by_id in final.items()},
        packages=packages, approvals=approvals, case_of=case_of,
        redelivered=sum(n - 1 for n in seen_ids.values() if n > 1), stored_accounts=accounts,
        stored_sessions=sessions, stored_reports=reports, package_rows=rows, delistings=delistings)


async def settle(bootstrap: str, database_url: str, ledger: Ledger, timeout: float = 180) -> tuple[Books, dict]:
    """Wait until nothing is lost (or time is up); returns the books and the problems left."""
    deadline = time.monotonic() + timeout
    while True:
        books = await read_books(bootstrap, database_url, ledger)
        problems = books.problems(ledger)
        if (not problems["lost"] and not problems["duplicated"]) or time.monotonic() > deadline:
            return books, problems
        await asyncio.sleep(3)


async def outbox_backlog(database_url: str, services: list[str]) -> dict[str, int]:
    schemas = {"intake": "intake", "legal-review": "legal_review", "disclosure": "disclosure",
               "moderation": "moderation"}
    backlog = {}
    for name in services:
        [row] = await db_fetch(database_url, f'SELECT count(*) AS n FROM "{schemas[name]}".outbox')
        backlog[name] = row["n"]
    return backlog


def write_summary(path: Path, summary: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


async def trace_lost_reports(bootstrap: str, group_prefix: str, lost: list[str]) -> dict[str, Any]:
    """Where each lost report is on the reports topic, and the group's committed offsets there.

    A lost report below its partition's committed offset was committed past without its
    effects; above it, it was never consumed.
    """
    from aiokafka import TopicPartition

    group = f"{group_prefix}-moderation"
    topics = {"source": "moderation.reports.submitted"}
    trace: dict[str, Any] = {report_id: {} for report_id in lost}
    for hop, topic in topics.items():
        for record in await read_topic(bootstrap, topic):
            try:
                report_id = json.loads(record.value)["data"]["report_id"]
            except (ValueError, KeyError, TypeError):
                continue
            if report_id in trace:
                trace[report_id].setdefault(hop, []).append([record.partition, record.offset])
    admin = kafka.admin(bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = kafka.consumer(bootstrap, None, auto_offset_reset="latest", fetch_max_wait_ms=500)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(t, p) for t in topics.values() for p in range(4)])
    finally:
        await consumer.stop()
    return {"reports": trace,
            "committed": {f"{tp.topic}[{tp.partition}]": meta.offset for tp, meta in committed.items()},
            "end_offsets": {f"{tp.topic}[{tp.partition}]": offset for tp, offset in ends.items()}}
