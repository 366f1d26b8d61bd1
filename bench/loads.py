"""Synthetic events the sections feed, and a fast bulk producer."""
from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

from aiokafka.admin import NewTopic

from warden.contract.envelope import encode_structured, new_event
from warden.contract.topics import TOPICS
from warden.runtime import kafka

REPORT = "warden.moderation.report.submitted.v1"
CONTENT = "warden.platform.content.updated.v1"
REASONS = ["drugs", "scam", "spam", "weapons", "illegal_goods", "other"]


def content_ids(run_id: str, count: int) -> list[str]:
    """The items `reports(run_id, count)` are about, in the order they are first reported."""
    ids = {}
    for n in range(count):
        ids.setdefault(f"bench-{run_id}-hot-{n // 25}" if n % 5 == 4 else f"bench-{run_id}-item-{n}", None)
    return list(ids)


def contents(ids: list[str], seed: int = 11) -> list[tuple[bytes, bytes, list]]:
    """platform.content's description of each item: public channels with an ordinary title and owner."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    out = []
    for content_id in ids:
        data = {"content_id": content_id, "kind": "channel", "owner_account_id": f"acct-{rng.randrange(10**6)}",
                "title": "A public channel found in search", "text": "News, photos and chat for members.",
                "language": "en", "public_in_search": True, "created_at": (now - timedelta(days=30)).isoformat(),
                "updated_at": (now - timedelta(days=1)).isoformat()}
        value, headers = encode_structured(new_event(CONTENT, "/bench/platform", data))
        out.append((content_id.encode(), value, headers))
    return out


def reports(run_id: str, count: int, seed: int = 7) -> list[tuple[bytes, bytes, list]]:
    """(key, value, headers) of `count` report events, about the items `content_ids` names.

    Four reports in five are about an item nobody else reports (scored, recorded);
    one in five goes to a "hot" item reported by five people for drugs, which
    crosses the delisting threshold and emits a delisting and a statement of reasons
    (with the reporters established: the section sets their starting trust).
    """
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    out = []
    hot = 0
    for n in range(count):
        if n % 5 == 4:
            content_id, reason = f"bench-{run_id}-hot-{hot // 5}", "drugs"
            hot += 1
        else:
            content_id, reason = f"bench-{run_id}-item-{n}", rng.choice(REASONS)
        data = {"report_id": f"bench-{run_id}-{n}", "reporter_id": f"reporter-{rng.randrange(50_000)}",
                "reported_at": (now - timedelta(seconds=rng.randrange(3600))).isoformat(), "surface": "search",
                "content": {"kind": "channel", "id": content_id, "owner_account_id": f"acct-{rng.randrange(10**6)}",
                            "title": "A public channel found in search", "text": None},
                "reason": reason, "comment": "Found through search; sells things it should not."}
        value, headers = encode_structured(new_event(REPORT, "/bench/reports", data))
        out.append((content_id.encode(), value, headers))
    return out


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes, list]]) -> float:
    """Publish everything as fast as the broker takes it; returns the seconds it took."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        futures = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return loop.time() - started


async def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = kafka.admin(bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


def topic_partitions(name: str) -> int:
    return TOPICS[name].partitions


def new_id() -> str:
    return uuid.uuid4().hex[:12]

