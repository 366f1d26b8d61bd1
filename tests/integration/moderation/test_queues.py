"""The queue as the console reads it, on real PostgreSQL: keyset pages that cover every item once in severity
order, filters and search, counts, claims that keep others from deciding, and the indexes the pages read."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from moderation import queues
from moderation.queues import Filters
from tests.integration.moderation.support import auth, config, content, publish, report, running_moderation
from tests.support.waiting import until
from tests.support.stack import service_settings

N = 130


class Explaining:
    """A connection whose fetch returns the plan of the statement instead of its rows."""

    def __init__(self, conn):
        self.conn, self.plan = conn, ""

    async def fetch(self, sql, *args):
        rows = await self.conn.fetch("EXPLAIN " + sql, *args)
        self.plan = "\n".join(r[0] for r in rows)
        return []


@pytest.fixture
async def queue_db(bootstrap, database_url):
    async with running_moderation(service_settings(bootstrap, database_url), config()):
        pass  # migrated
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
    run = uuid.uuid4().hex[:6]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [f"q-{run}-{n:03d}" for n in range(N)]
    await conn.execute("DELETE FROM queue")
    await conn.execute("INSERT INTO content (content_id, kind, first_reported_at) SELECT id, 'channel', $2"
                       " FROM unnest($1::text[]) AS id", ids, start)
    # Every 10th item high severity; priorities repeat so ties are broken by queued_at, then content_id.
    await conn.execute(
        """INSERT INTO queue (content_id, priority, urgent, trusted, score, reason, queued_at)
           SELECT id, CASE WHEN n % 10 = 0 THEN 2000 ELSE n % 7 END, n % 10 = 0, n % 3 = 0, n % 7,
                  CASE WHEN n % 2 = 0 THEN 'spam' ELSE 'scam' END, $2::timestamptz + (n % 5) * interval '1 minute'
           FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)""", ids, start)
    await conn.execute(
        """INSERT INTO platform_content (content_id, kind, owner_account_id, public_in_search, created_at, updated_at,
                                         language)
           SELECT id, 'channel', 'acc-' || id, true, $2, $2, CASE WHEN n % 4 = 0 THEN 'de' ELSE 'en' END
           FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)""", ids, start)
    try:
        yield conn, ids, start + timedelta(hours=1)
    finally:
        await conn.execute("DELETE FROM queue")
        await conn.close()


async def all_pages(conn, filters: Filters, at) -> list[str]:
    seen, after = [], None
    while True:
        rows, after = await queues.page(conn, filters, "maria", at, after)
        seen += [r["content_id"] for r in rows]
        if after is None:
            return seen


async def test_keyset_pages_cover_the_queue_once_in_severity_order(queue_db):
    conn, ids, at = queue_db
    expected = [r["content_id"] for r in await conn.fetch(
        "SELECT content_id FROM queue ORDER BY priority DESC, queued_at, content_id")]
    assert await all_pages(conn, Filters(size=25), at) == expected and len(expected) == N  # no 500-row cap
    oldest = [r["content_id"] for r in await conn.fetch("SELECT content_id FROM queue ORDER BY queued_at, content_id")]
    assert await all_pages(conn, Filters(size=25, sort="oldest"), at) == oldest
    first, _ = await queues.page(conn, Filters(size=25), "maria", at)
    assert all(r["urgent"] for r in first[:13]) and not first[13]["urgent"]  # severity first
    # A damaged cursor is the first page, never an error.
    assert [r["content_id"] for r in (await queues.page(conn, Filters(size=25), "maria", at, "!!"))[0]] == \
        expected[:25]


async def test_filters_search_and_counts(queue_db):
    conn, ids, at = queue_db
    spam_high = await all_pages(conn, Filters(reason="spam", severity="high"), at)
    assert spam_high and all([await conn.fetchval("SELECT reason = 'spam' AND urgent FROM queue WHERE content_id = $1",
                                                  c) for c in spam_high])
    german = await all_pages(conn, Filters(language="de", trusted=True), at)
    assert len(german) == len([n for n in range(1, N + 1) if n % 4 == 0 and n % 3 == 0])
    assert await all_pages(conn, Filters(search="acc-" + ids[7]), at) == [ids[7]]   # by owner account id
    assert await all_pages(conn, Filters(search=ids[8]), at) == [ids[8]]            # by content id
    assert await all_pages(conn, Filters(search="acc-nobody"), at) == []
    counts = await queues.counts(conn, Filters(reason="spam"), "maria", at)
    assert counts["matching"] == N // 2 and counts["total"] == N and counts["unclaimed"] == N // 2
    assert counts["high"] == len([n for n in range(1, N + 1) if n % 10 == 0])


async def test_a_claim_keeps_others_from_deciding_until_it_runs_out(queue_db):
    conn, ids, at = queue_db
    held = await queues.claim(conn, ids[0], "maria", at, 15)
    assert held["moderator"] == "maria"
    assert (await queues.claim(conn, ids[0], "alex", at + timedelta(minutes=5), 15))["moderator"] == "maria"
    with pytest.raises(queues.Claimed, match="maria holds this item"):
        await queues.check_free(conn, ids[0], "alex", at + timedelta(minutes=5))
    await queues.check_free(conn, ids[0], "maria", at + timedelta(minutes=5))  # her own: no refusal
    assert await all_pages(conn, Filters(status="mine"), at) == [ids[0]]
    assert ids[0] not in await all_pages(conn, Filters(status="unclaimed"), at)
    rows, _ = await queues.page(conn, Filters(search=ids[0]), "alex", at)
    assert rows[0]["claimed_by"] == "maria"
    later = at + timedelta(minutes=16)  # run out: the next moderator takes it
    assert (await queues.claim(conn, ids[0], "alex", later, 15))["moderator"] == "alex"
    await queues.check_free(conn, ids[0], "alex", later)
    assert await queues.claim(conn, "not-queued", "maria", at, 15) is None
    await conn.execute("DELETE FROM queue WHERE content_id = $1", ids[0])  # decided: the claim goes with it
    assert await conn.fetchval("SELECT count(*) FROM claims WHERE content_id = $1", ids[0]) == 0


async def test_next_and_previous_skip_items_others_hold(queue_db):
    conn, ids, at = queue_db
    order = await all_pages(conn, Filters(), at)
    await queues.claim(conn, order[1], "alex", at, 15)
    around = await queues.neighbours(conn, order[0], "maria", at)
    assert around == {"next": order[2], "previous": None}
    assert (await queues.neighbours(conn, order[2], "maria", at))["previous"] == order[0]


async def test_pages_read_the_queue_through_its_indexes(queue_db):
    conn, ids, at = queue_db
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # a 130-row table: make the planner show its choice
        for sort, index in (("severity", "queue_severity"), ("oldest", "queue_oldest")):
            explaining = Explaining(conn)
            await queues.page(explaining, Filters(sort=sort), "maria", at, None)
            assert index in explaining.plan, explaining.plan



async def test_the_api_refuses_a_decision_on_an_item_another_moderator_holds(bootstrap, database_url):
    item = content(title="Crypto giveaway")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        await report(bootstrap, item, "org-hotline", "spam")  # a trusted flagger's report is always queued

        async def queued() -> bool:
            rows = (await api.get("/moderation/queue", headers=auth("mod-token"))).json()
            return any(r["content_id"] == item["id"] for r in rows)
        await until(queued)
        claim, decide = f"/moderation/content/{item['id']}/claim", f"/moderation/content/{item['id']}/decisions"
        held = await api.post(claim, headers=auth("mod-token"))
        assert held.status_code == 200 and held.json()["moderator"] == "maria"
        mine = (await api.get("/moderation/queue?status=mine", headers=auth("mod-token"))).json()
        assert [(r["content_id"], r["claimed_by"]) for r in mine] == [(item["id"], "maria")]
        assert (await api.get("/moderation/queue?status=mine", headers=auth("appeal-token"))).json() == []
        refused = await api.post(claim, headers=auth("appeal-token"))
        assert refused.status_code == 409 and "maria" in refused.json()["detail"]
        refused = await api.post(decide, headers=auth("appeal-token"), json={"action": "keep"})
        assert refused.status_code == 409 and "maria" in refused.json()["detail"]
        assert await queued()
        assert (await api.post(decide, headers=auth("mod-token"), json={"action": "keep"})).status_code == 200
        assert not await queued()
        assert (await api.post(claim, headers=auth("mod-token"))).status_code == 404  # decided: nothing to hold


async def test_the_api_pages_the_queue_by_cursor(bootstrap, database_url):
    items = [content(title=f"Knitting circle {n}") for n in range(3)]  # nothing the classifier flags: the reports say why
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        for item in items:
            await publish(bootstrap, item)
            await report(bootstrap, item, "org-hotline", "spam")

        ours = {i["id"] for i in items}  # the broker is the session's: other tests' items may be queued too

        async def all_queued() -> bool:
            answer = await api.get("/moderation/queue", headers=auth("mod-token"))
            return ours <= {r["content_id"] for r in answer.json()}
        await until(all_queued)
        seen, after = [], None
        while True:
            page = await api.get("/moderation/queue", params={"limit": 2, "reason": "spam", **({"after": after} if after else {})},
                                 headers=auth("mod-token"))
            seen += [r["content_id"] for r in page.json() if r["content_id"] in ours]
            after = page.headers.get("x-next-cursor")
            if not after:
                break
        assert sorted(seen) == sorted(i["id"] for i in items) and len(seen) == 3
        assert ours.isdisjoint(r["content_id"] for r in
                               (await api.get("/moderation/queue?reason=drugs", headers=auth("mod-token"))).json())
        assert (await api.get("/moderation/queue?status=everything", headers=auth("mod-token"))).status_code == 422
