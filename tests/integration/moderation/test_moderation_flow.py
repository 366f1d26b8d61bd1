"""Moderation on the real broker and Postgres: scoring, delisting, the queue, moderators and appeals."""
from __future__ import annotations

import asyncpg

from tests.integration.moderation.support import (
    about, appeal, auth, config, content, publish, report, running_moderation,
)
from tests.support.kafka import produce_raw, wait_for_events, wait_for_records
from tests.support.stack import service_settings
from tests.support.waiting import until

DELISTED, RELISTED = "warden.search.content.delisted.v1", "warden.search.content.relisted.v1"


async def fetchval(database_url: str, sql: str, *args):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_distinct_reporters_delist_once_repeats_do_not(bootstrap, database_url, tmp_path):
    """Reporters with established trust (here every reporter starts with it): three distinct ones delist."""
    repeated, mobbed = content(), content()
    async with running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0)):
        await publish(bootstrap, repeated)
        await publish(bootstrap, mobbed)
        for _ in range(3):
            await report(bootstrap, repeated, "same-reporter", "drugs")
        await produce_raw(bootstrap, "moderation.reports.submitted", b"{not json", key=b"x")
        for n in range(3):
            await report(bootstrap, mobbed, f"reporter-{n}-{mobbed['id']}", "drugs")
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(mobbed["id"]), settle=1.5)
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(mobbed["id"]))
        await until(lambda: fetchval(database_url, "SELECT count(*) = 3 FROM reports WHERE content_id = $1",
                                     repeated["id"]))
        dead = await wait_for_records(bootstrap, "moderation.reports.submitted.dlq", lambda r: r.value == b"{not json")
    assert delisted["type"] == DELISTED and delisted["data"]["category"] == "drugs"
    assert sor["data"]["decision_id"] == delisted["data"]["decision_id"]
    assert sor["data"]["action"] == "delist" and sor["data"]["automated_decision"] == "FULLY"
    assert sor["data"]["automated_detection"] is False
    assert sor["data"]["ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert "FR" in sor["data"]["territorial_scope"]
    assert dict(dead[0].headers)["dlq.reason"] == b"undecodable"
    assert dict(dead[0].headers)["dlq.service"] == b"moderation"
    assert await fetchval(database_url, "SELECT state FROM content WHERE content_id = $1", repeated["id"]) == "listed"
    assert not await wait_for_events(bootstrap, "search.delistings", about(repeated["id"]), count=0)


async def test_bank_match_delists_at_once_and_queue_puts_urgent_then_trusted_first(bootstrap, database_url,
                                                                                     tmp_path):
    banned = content(title="KNOWN-ABUSE-SAMPLE-0001")
    ordinary, flagged = content(), content()
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        for item in (ordinary, flagged, banned):
            await publish(bootstrap, item)
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(banned["id"]))  # on arrival
        await report(bootstrap, ordinary, f"someone-{ordinary['id']}", "child_abuse")  # new reporter, 2.5: review
        await report(bootstrap, flagged, "org-hotline", "drugs")          # trusted flagger, score 10: review
        await report(bootstrap, banned, "someone-else", "other")          # already delisted: changes nothing
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(banned["id"]), settle=1)

        async def queue_of_three():
            answer = (await api.get("/moderation/queue", headers=auth("mod-token"))).json()
            mine = [i["content_id"] for i in answer if i["content_id"] in (banned["id"], ordinary["id"], flagged["id"])]
            return mine if len(mine) == 3 else None
        order = await until(queue_of_three)
        assert (await api.get("/moderation/queue")).status_code == 401
        assert (await api.get("/moderation/queue", headers=auth("viewer-token"))).status_code == 403
    assert delisted["data"]["category"] == "child_abuse"
    assert sor["data"]["automated_detection"] is True and sor["data"]["automated_decision"] == "FULLY"
    assert sor["data"]["category"] == "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    assert sor["data"]["source_type"] == "SOURCE_VOLUNTARY"  # found on arrival, before any report
    assert order == [banned["id"], flagged["id"], ordinary["id"]]


async def test_moderator_confirms_then_appeal_overturn_relists_and_lowers_trust(bootstrap, database_url, tmp_path):
    item = content()
    reporters = [f"r{n}-{item['id']}" for n in range(3)]
    async with running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0)) as api:
        await publish(bootstrap, item)
        for who in reporters:
            await report(bootstrap, item, who, "weapons")
        await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        path = f"/moderation/content/{item['id']}/decisions"
        assert (await api.post(path, json={"action": "restore"}, headers=auth("viewer-token"))).status_code == 403
        confirmed = await api.post(path, json={"action": "delist"}, headers=auth("mod-token"))
        assert confirmed.status_code == 200, confirmed.text
        assert (await api.post(path, json={"action": "keep"}, headers=auth("mod-token"))).status_code == 409
        [violation] = await wait_for_events(bootstrap, "moderation.violations",
                                            lambda e: e["data"]["content_id"] == item["id"])
        trust_after_uphold = await fetchval(database_url, "SELECT trust FROM reporters WHERE reporter_id = $1",
                                            reporters[0])

        appeal_id = await appeal(bootstrap, item["id"], item["owner_account_id"])
        stranger = await appeal(bootstrap, item["id"], "someone-else")
        decide = f"/moderation/appeals/{appeal_id}/decisions"
        await until(lambda: fetchval(database_url, "SELECT count(*) = 2 FROM appeals WHERE content_id = $1", item["id"]))
        assert (await api.post(decide, json={"outcome": "overturn"}, headers=auth("mod-token"))).status_code == 403
        overturned = await api.post(decide, json={"outcome": "overturn"}, headers=auth("appeal-token"))
        assert overturned.status_code == 200, overturned.text
        again = await api.post(decide, json={"outcome": "uphold"}, headers=auth("appeal-token"))
        refused = await api.post(f"/moderation/appeals/{stranger}/decisions", json={"outcome": "overturn"},
                                 headers=auth("appeal-token"))
        [relisted] = await wait_for_events(bootstrap, "search.delistings",
                                           lambda e: about(item["id"])(e) and e["type"] == RELISTED)
        sors = await wait_for_events(bootstrap, "moderation.decisions", about(item["id"]), count=3)
        [withdrawn] = await wait_for_events(
            bootstrap, "moderation.violations",
            lambda e: e["data"]["content_id"] == item["id"] and e["type"].endswith("withdrawn.v1"))
    assert violation["data"]["account_id"] == item["owner_account_id"]
    assert withdrawn["data"]["account_id"] == item["owner_account_id"]
    assert withdrawn["data"]["decision_id"] == sors[1]["data"]["decision_id"]  # the moderator's confirmation
    assert trust_after_uphold > 1.0
    assert again.status_code == 409 and "overturned" in again.json()["detail"]
    assert refused.status_code == 409 and "not_owner" in refused.json()["detail"]
    assert relisted["data"]["decision_id"] == overturned.json()["decision_id"]
    assert [s["data"]["action"] for s in sors] == ["delist", "delist", "relist"]
    assert [s["data"]["automated_decision"] for s in sors] == ["FULLY", "NOT_AUTOMATED", "NOT_AUTOMATED"]
    trust = await fetchval(database_url, "SELECT trust FROM reporters WHERE reporter_id = $1", reporters[0])
    assert trust < trust_after_uphold


async def test_abusive_reporter_is_warned_then_suspended_and_then_changes_nothing(bootstrap, database_url, tmp_path):
    cfg = config(misuse_min_unfounded=1, misuse_min_share=0.5, review_threshold=0.5)
    abuser = f"abuser-{content()['id']}"
    async with running_moderation(service_settings(bootstrap, database_url), cfg) as api:
        for _ in range(2):  # each kept item is a manifestly unfounded report: warned, then suspended
            item = content()
            await publish(bootstrap, item)
            await report(bootstrap, item, abuser, "terrorism")  # a new reporter's 2.5 (then less): review
            await until(lambda: fetchval(database_url, "SELECT count(*) = 1 FROM queue WHERE content_id = $1",
                                         item["id"]))
            kept = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "keep"},
                                  headers=auth("mod-token"))
            assert kept.status_code == 200, kept.text
        later = content()
        await publish(bootstrap, later)
        await report(bootstrap, later, abuser, "terrorism")
        await until(lambda: fetchval(database_url, "SELECT count(*) = 1 FROM reports WHERE content_id = $1",
                                     later["id"]))
    steps = await fetchval(database_url, "SELECT array_agg(step ORDER BY id) FROM misuse_actions WHERE reporter_id = $1",
                           abuser)
    assert steps == ["warn", "suspend"]
    assert await fetchval(database_url, "SELECT suspended FROM reports WHERE content_id = $1", later["id"]) is True
    assert await fetchval(database_url, "SELECT count(*) FROM queue WHERE content_id = $1", later["id"]) == 0


async def test_one_ordinary_report_delists_nothing_and_a_rejected_report_lowers_trust(bootstrap, database_url,
                                                                                       tmp_path):
    item = content()
    reporter = f"lone-{item['id']}"
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        await report(bootstrap, item, reporter, "child_abuse")  # severe reason, but one ordinary reporter

        async def queued():
            answer = (await api.get("/moderation/queue", headers=auth("mod-token"))).json()
            return [i for i in answer if i["content_id"] == item["id"]] or None
        await until(queued)
        kept = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "keep"},
                              headers=auth("mod-token"))
        assert kept.status_code == 200, kept.text
        trust = await until(lambda: fetchval(
            database_url, "SELECT trust FROM reporters WHERE reporter_id = $1 AND trust < 0.25", reporter))
    assert trust < 0.25
    assert await fetchval(database_url, "SELECT state FROM content WHERE content_id = $1", item["id"]) == "listed"
    assert not await wait_for_events(bootstrap, "search.delistings", about(item["id"]), count=0)
