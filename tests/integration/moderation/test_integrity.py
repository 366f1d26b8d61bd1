"""Moderation you cannot game (issue 20), on the real broker and Postgres through the moderation service.

What the content is and who owns it comes from platform.content, never from a
report; fresh accounts cannot mob content out of search; misuse is warned before
it is suspended; people are told; an overturned violation leaves legal review.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import asyncpg
import httpx

from tests.integration.legal_review.support import publish_received, received, registered
from tests.integration.moderation.support import (
    REMOVED, TOKENS, about, appeal, auth, config, console_page, content, publish, report, running_moderation,
)
from tests.support.kafka import produce_event, wait_for_events, wait_for_records
from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.support.waiting import until

DELISTED, WITHDRAWN = "warden.search.content.delisted.v1", "warden.moderation.violation.withdrawn.v1"


async def fetch(database_url: str, sql: str, *args):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def queued(api: httpx.AsyncClient, content_id: str) -> dict | None:
    answer = (await api.get("/moderation/queue", params={"limit": 1000}, headers=auth("mod-token"))).json()
    return next((i for i in answer if i["content_id"] == content_id), None)


def for_account(account_id: str):
    return lambda e: e["data"].get("account_id") == account_id


async def test_fresh_account_mobs_do_not_delist_they_are_queued_as_coordinated(bootstrap, database_url):
    knitting, bakery = content(title="Knitting club Lyon"), content(title="Neighbourhood bakery")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, knitting)
        await publish(bootstrap, bakery)
        for n in range(5):  # 5 x 2.5 = 12.5, past the delisting threshold, with no established trust behind it
            await report(bootstrap, knitting, f"fresh-{n}-{knitting['id']}", "child_abuse")
        for n in range(3):
            await report(bootstrap, bakery, f"fresh-{n}-{bakery['id']}", "drugs")

        async def scored(item, score):
            entry = await queued(api, item["id"])
            return entry if entry and entry["score"] >= score else None
        mobbed = await until(lambda: scored(knitting, 12.5))
        other = await until(lambda: scored(bakery, 3))
        assert not await wait_for_events(bootstrap, "search.delistings",
                                         lambda e: e["data"]["content_id"] in (knitting["id"], bakery["id"]),
                                         count=0, settle=2)
    assert mobbed["coordinated"] and mobbed["state"] == "listed"
    assert other["coordinated"] and other["state"] == "listed"


async def test_reporters_named_like_bank_matches_are_a_mob_of_fresh_accounts_not_automated_detection(
        bootstrap, database_url):
    item = content(title="Cycling club Nantes")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        for n in range(5):
            await report(bootstrap, item, f"bank:known-abuse-{n}", "child_abuse")

        async def scored():
            entry = await queued(api, item["id"])
            return entry if entry and entry["score"] >= 12.5 else None
        mobbed = await until(scored)
        assert not await wait_for_events(bootstrap, "search.delistings", about(item["id"]), count=0, settle=2)
    assert mobbed["coordinated"] and mobbed["automated"] is None and mobbed["state"] == "listed"


async def test_reporter_typed_bank_text_does_not_delist_and_is_shown_as_a_claim(bootstrap, database_url):
    item = content(title="Photography tips")
    claim = dict(item, title="KNOWN-ABUSE-SAMPLE-0001", text="known abuse sample 0002",
                 owner_account_id="framed-account")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        await report(bootstrap, claim, f"someone-{item['id']}", "child_abuse")

        async def seen():
            view = (await api.get(f"/moderation/content/{item['id']}", headers=auth("mod-token"))).json()
            return view if view.get("reports") else None
        view = await until(seen)
        assert not await wait_for_events(bootstrap, "search.delistings", about(item["id"]), count=0, settle=2)
    assert view["platform"]["title"] == "Photography tips" and view["bank_matches"] == []
    [shown] = view["reports"]
    assert shown["claimed_title"] == "KNOWN-ABUSE-SAMPLE-0001" and shown["claimed_owner"] == "framed-account"
    assert view["platform"]["owner_account_id"] == item["owner_account_id"]


async def test_ownership_and_appeal_rights_follow_platform_content(bootstrap, database_url):
    owned, ownerless = content(), content()
    framed = f"framed-{owned['id']}"
    claim = dict(owned, owner_account_id=framed)
    async with running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0)) as api:
        await publish(bootstrap, owned)
        await publish(bootstrap, ownerless, owner_account_id=None)
        for n in range(3):
            await report(bootstrap, claim, f"r{n}-{owned['id']}", "weapons")
            await report(bootstrap, dict(ownerless, owner_account_id=framed), f"r{n}-{ownerless['id']}", "weapons")
        for item in (owned, ownerless):
            await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
            confirmed = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "delist"},
                                       headers=auth("mod-token"))
            assert confirmed.status_code == 200, confirmed.text
        [violation] = await wait_for_events(bootstrap, "moderation.violations",
                                            lambda e: e["data"]["content_id"] in (owned["id"], ownerless["id"]),
                                            settle=1.5)
        by_framed = await appeal(bootstrap, owned["id"], framed)
        by_owner = await appeal(bootstrap, owned["id"], owned["owner_account_id"],
                                submitted_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
        by_anyone = await appeal(bootstrap, ownerless["id"], owned["owner_account_id"])

        async def appeals():
            rows = await fetch(database_url, "SELECT appeal_id, status, reason, submitted_at FROM appeals"
                                             " WHERE appeal_id = ANY($1)", [by_framed, by_owner, by_anyone])
            return {r["appeal_id"]: r for r in rows} if len(rows) == 3 else None
        found = await until(appeals)
        shown = (await api.get(f"/moderation/appeals/{by_owner}", headers=auth("appeal-token"))).json()
        refusals = await wait_for_events(bootstrap, "moderation.notices", for_account(framed))
    assert violation["data"]["account_id"] == owned["owner_account_id"]  # not the framed account, not no one
    assert found[by_framed]["status"] == "refused" and found[by_framed]["reason"].startswith("not_owner")
    assert found[by_anyone]["status"] == "refused" and found[by_anyone]["reason"].startswith("no_owner")
    assert found[by_owner]["status"] == "open"
    assert found[by_owner]["submitted_at"].year == datetime.now(timezone.utc).year  # when Warden received it
    assert shown["statement"] == "It is a hiking club" and shown["claimed_submitted_at"].startswith("2020-01-01")
    assert [n["data"]["kind"] for n in refusals] == ["appeal_outcome"]  # the refused appellant is told (Art. 20(5))


async def test_a_suspended_reporters_report_of_bank_material_still_acts(bootstrap, database_url):
    item = content(title="Family photos")
    suspended = f"suspended-{item['id']}"
    async with running_moderation(service_settings(bootstrap, database_url), config()):
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
        try:
            await conn.execute("INSERT INTO reporters (reporter_id, trust, suspended_until)"
                               " VALUES ($1, 0.1, now() + interval '10 days')", suspended)
        finally:
            await conn.close()
        await report(bootstrap, item, suspended, "child_abuse")
        await until(lambda: fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1 AND suspended",
                                  item["id"]))
        await publish(bootstrap, item, title="KNOWN-ABUSE-SAMPLE-0001")  # what the content is, says the platform
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(item["id"]))
    assert delisted["data"]["category"] == "child_abuse"
    # found by matching the platform's facts: the suspended reporter's notice itself is not processed (Art. 23)
    assert sor["data"]["automated_detection"] is True and sor["data"]["source_type"] == "SOURCE_VOLUNTARY"
    assert "known-abuse-material" in sor["data"]["facts"]


async def test_a_drug_delivery_channel_with_no_report_is_queued_and_known_material_delisted(bootstrap,
                                                                                            database_url):
    shop = content(title="Fast MDMA delivery", text="Buy cocaine, delivered in 30 minutes, all of Paris")
    known = content(title="KNOWN-TERROR-SAMPLE-0001")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, shop)
        await publish(bootstrap, known)
        entry = await until(lambda: queued(api, shop["id"]))
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(known["id"]))
        first = await until(lambda: queued(api, known["id"]))
        reports = await fetch(database_url, "SELECT 1 FROM reports WHERE content_id = ANY($1)",
                              [shop["id"], known["id"]])
    assert reports == []  # no one reported either
    assert entry["source"] == "proactive" and entry["reason"] == "drugs" and "drugs-for-sale" in entry["automated"]
    assert sor["data"]["action"] == "delist" and sor["data"]["source_type"] == "SOURCE_VOLUNTARY"
    assert first["urgent"] and first["priority"] > entry["priority"]


async def test_queue_puts_high_severity_then_trusted_flaggers_first_not_automatic_delistings(bootstrap,
                                                                                         database_url):
    volume, flagged = content(), content()
    async with running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0)) as api:
        await publish(bootstrap, volume)
        await publish(bootstrap, flagged)
        for n in range(3):  # established reporters: delisted automatically
            await report(bootstrap, volume, f"r{n}-{volume['id']}", "drugs")
        await report(bootstrap, flagged, "org-hotline", "spam")
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(volume["id"]))
        auto = await until(lambda: queued(api, volume["id"]))
        trusted = await until(lambda: queued(api, flagged["id"]))
        told = await wait_for_events(bootstrap, "moderation.notices", for_account(f"r0-{volume['id']}"))
    assert not auto["urgent"] and trusted["trusted"]
    assert trusted["priority"] > auto["priority"]
    # each reporter is told of the automated decision on their notice at once (DSA Art. 16(5))
    assert [(n["data"]["kind"], n["data"]["decision_id"]) for n in told] == [
        ("notice_outcome", delisted["data"]["decision_id"])]


async def test_misuse_is_warned_with_a_notice_and_only_later_reports_count_towards_suspension(bootstrap,
                                                                                             database_url):
    cfg = config(misuse_min_unfounded=2, misuse_min_share=0.5, review_threshold=0.1)
    abuser = f"abuser-{content()['id']}"
    before = [content() for _ in range(3)]
    after = [content() for _ in range(2)]
    async with running_moderation(service_settings(bootstrap, database_url), cfg) as api:

        async def keep(item):
            await until(lambda: queued(api, item["id"]))
            kept = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "keep"},
                                  headers=auth("mod-token"))
            assert kept.status_code == 200, kept.text

        for item in before:  # all three filed before any warning
            await publish(bootstrap, item)
            await report(bootstrap, item, abuser, "terrorism")
        for item in before:  # two unfounded: warned; the third, filed before the warning, does not suspend
            await keep(item)
        steps_before = [r["step"] for r in await fetch(
            database_url, "SELECT step FROM misuse_actions WHERE reporter_id = $1 ORDER BY id", abuser)]
        for item in after:
            await publish(bootstrap, item)
            await report(bootstrap, item, abuser, "terrorism")
            await keep(item)
        notices = await wait_for_events(bootstrap, "moderation.notices", for_account(abuser), count=7)
        keeps = await wait_for_events(bootstrap, "moderation.decisions",
                                      lambda e: e["data"]["content_id"] == after[0]["id"])
    assert steps_before == ["warn"]
    kinds = [n["data"]["kind"] for n in notices]
    assert kinds == ["notice_outcome", "notice_outcome", "misuse_warning", "notice_outcome", "notice_outcome",
                     "notice_outcome", "misuse_suspension"]
    assert keeps[0]["data"]["action"] == "keep" and keeps[0]["data"]["decision_visibility"] == []
    assert keeps[0]["data"]["ground_explanation"] and keeps[0]["data"]["puid"] == keeps[0]["data"]["decision_id"]


async def test_trusted_flaggers_are_never_suspended_for_misuse(bootstrap, database_url):
    cfg = config(misuse_min_unfounded=1, misuse_min_share=0.5)
    items = [content() for _ in range(2)]
    async with running_moderation(service_settings(bootstrap, database_url), cfg) as api:
        for item in items:
            await publish(bootstrap, item)
            await report(bootstrap, item, "org-hotline", "drugs")
            await until(lambda: queued(api, item["id"]))
            kept = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "keep"},
                                  headers=auth("mod-token"))
            assert kept.status_code == 200, kept.text
    assert await fetch(database_url, "SELECT 1 FROM misuse_actions WHERE reporter_id = 'org-hotline'") == []


async def test_reports_of_content_never_described_go_to_humans_after_the_wait(bootstrap, database_url):
    item = content(kind="message")
    async with running_moderation(service_settings(bootstrap, database_url),
                                  config(unknown_content_wait_hours=1 / 3600)) as api:
        await report(bootstrap, item, f"someone-{item['id']}", "scam")
        entry = await until(lambda: queued(api, item["id"]))
    assert entry["source"] == "unknown_content" and entry["state"] == "listed"


async def test_appeals_are_decided_by_someone_else_and_an_overturned_violation_leaves_legal_review(
        bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps({"tok-rita": {"reviewer": "rita", "role": "reviewer"}}))
    court = new_authority("court", "FR")
    case = received(court)
    owner = case["request"]["suspect"]["account_id"]
    item = content(owner_account_id=owner)
    tokens = dict(TOKENS, **{"ana-token": {"name": "ana", "roles": ["appeals"]}})
    review_settings = service_settings(bootstrap, database_url)
    async with running("legal-review", review_settings), \
            running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0, tokens=tokens)) as api, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{review_settings.http_port}", timeout=10) as review:
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, case)
        await publish(bootstrap, item)
        for n in range(3):
            await report(bootstrap, item, f"r{n}-{item['id']}", "weapons")
        await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        confirmed = await api.post(f"/moderation/content/{item['id']}/decisions", json={"action": "delist"},
                                   headers=auth("appeal-token"))  # alex confirms
        assert confirmed.status_code == 200, confirmed.text

        async def case_view():
            answer = await review.get(f"/review/cases/{case['case_id']}", headers={"Authorization": "Bearer tok-rita"})
            return answer.json() if answer.status_code == 200 else None

        async def violations(present: bool):
            view = await case_view()
            return view if view and bool(view["violations"]) == present else None
        shown = await until(lambda: violations(True))
        first, second = (await appeal(bootstrap, item["id"], owner), await appeal(bootstrap, item["id"], owner))
        await until(lambda: fetch(database_url, "SELECT 1 FROM appeals WHERE appeal_id = $1 AND status = 'open'",
                                  second))
        same = await api.post(f"/moderation/appeals/{first}/decisions", json={"outcome": "overturn"},
                              headers=auth("appeal-token"))
        overturned = await api.post(f"/moderation/appeals/{first}/decisions", json={"outcome": "overturn"},
                                    headers=auth("ana-token"))
        upheld_late = await api.post(f"/moderation/appeals/{second}/decisions", json={"outcome": "uphold"},
                                     headers=auth("ana-token"))
        gone = await until(lambda: violations(False))
        events = await wait_for_events(bootstrap, "moderation.violations", lambda e: e["data"]["content_id"] ==
                                       item["id"], count=2, settle=1.5)
        told = await wait_for_events(bootstrap, "moderation.notices",
                                     lambda e: for_account(owner)(e) and e["data"]["kind"] == "appeal_outcome")
    assert shown["violations"][0]["content_id"] == item["id"]
    assert same.status_code == 409 and "someone other" in same.json()["detail"]
    assert overturned.status_code == 200, overturned.text
    assert upheld_late.status_code == 409  # relisted: not re-confirmed, no second violation
    assert gone["violations"] == []
    assert [e["type"].rsplit(".", 2)[-2] for e in events] == ["confirmed", "withdrawn"]
    assert events[1]["type"] == WITHDRAWN and events[1]["data"]["account_id"] == owner
    assert told[0]["data"]["decision_id"] == overturned.json()["decision_id"]


async def test_platform_content_attacks_change_nothing_and_the_service_goes_on(bootstrap, database_url):
    """A real update replayed with an older date and another owner, facts that break the contract (a media hash
    that is not one, a description past 16 KiB), a removal older than the facts: none takes effect; the invalid
    ones are dead-lettered with their reason, and the content published after them is still checked."""
    item = content(title="Chess club")
    later = content(title="KNOWN-ABUSE-SAMPLE-0001")
    attacker = f"attacker-{item['id']}"
    now = datetime.now(timezone.utc)
    old = datetime(2025, 1, 1, tzinfo=timezone.utc).isoformat()
    async with running_moderation(service_settings(bootstrap, database_url), config(trust_new=1.0)) as api:
        await publish(bootstrap, item, updated_at=now.isoformat())
        await until(lambda: fetch(database_url, "SELECT 1 FROM platform_content WHERE content_id = $1", item["id"]))
        await publish(bootstrap, item, updated_at=old, owner_account_id=attacker, title="KNOWN-ABUSE-SAMPLE-0001")
        bad_hash = await publish(bootstrap, item, media=[{"media_id": "m1", "pdq": "not-a-hash", "quality": 90}])
        too_long = await publish(bootstrap, item, text="x" * 16385)
        await produce_event(bootstrap, "platform.content", REMOVED, {"content_id": item["id"], "removed_at": old})
        await publish(bootstrap, later)
        await wait_for_events(bootstrap, "search.delistings", about(later["id"]))  # the service went on
        dead = await wait_for_records(
            bootstrap, "platform.content.dlq",
            lambda r: bad_hash["id"].encode() in r.value or too_long["id"].encode() in r.value, count=2)
        for n in range(3):
            await report(bootstrap, item, f"r{n}-{item['id']}", "weapons")
        await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        by_attacker = await appeal(bootstrap, item["id"], attacker)
        view = (await api.get(f"/moderation/content/{item['id']}", headers=auth("mod-token"))).json()
        refused = await until(lambda: fetch(database_url, "SELECT reason FROM appeals WHERE appeal_id = $1",
                                            by_attacker))
    assert {dict(r.headers)["dlq.reason"] for r in dead} == {b"invalid_data"}
    assert view["platform"]["owner_account_id"] == item["owner_account_id"] and view["platform"]["removed_at"] is None
    assert view["platform"]["title"] == "Chess club" and view["bank_matches"] == []
    assert refused[0]["reason"].startswith("not_owner")


async def test_content_the_platform_removed_leaves_the_queue_and_later_reports_change_nothing(bootstrap,
                                                                                             database_url):
    item = content(title="Fast MDMA delivery")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        await until(lambda: queued(api, item["id"]))  # proactively queued
        await produce_event(bootstrap, "platform.content", REMOVED,
                            {"content_id": item["id"], "removed_at": datetime.now(timezone.utc).isoformat()})

        async def gone():
            return await queued(api, item["id"]) is None
        await until(gone)
        await report(bootstrap, item, f"late-{item['id']}", "child_abuse")
        [kept] = await until(lambda: fetch(database_url, "SELECT pending_since FROM reports WHERE content_id = $1",
                                           item["id"]))
        view = (await api.get(f"/moderation/content/{item['id']}", headers=auth("mod-token"))).json()
        still_gone = await gone()
    assert kept["pending_since"] is None  # nothing to wait for: never handed to the queue either
    assert still_gone and view["bank_matches"] == [] and view["platform"]["removed_at"]


async def test_changed_content_is_checked_again_on_arrival(bootstrap, database_url):
    item = content(title="Garden furniture")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        created = datetime.now(timezone.utc)
        await publish(bootstrap, item, created_at=created.isoformat(), updated_at=created.isoformat())
        await until(lambda: fetch(database_url, "SELECT 1 FROM platform_content WHERE content_id = $1", item["id"]))
        assert await queued(api, item["id"]) is None
        changed = datetime.now(timezone.utc)
        await publish(bootstrap, item, title="Garden furniture (and kokain kaufen, schnelle Lieferung)",
                      created_at=created.isoformat(), updated_at=changed.isoformat())
        entry = await until(lambda: queued(api, item["id"]))
    assert entry["source"] == "proactive" and entry["reason"] == "drugs"


async def test_a_brigaded_items_console_page_shows_the_latest_reports_and_weighs_them_all(bootstrap, database_url):
    item = content(title="Chess club Lille")
    async with running_moderation(service_settings(bootstrap, database_url), config()) as api:
        await publish(bootstrap, item)
        await report(bootstrap, item, f"first-{item['id']}", "spam")
        await until(lambda: fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1", item["id"]))
        brigade = 5000  # recorded as the service records them; the page must not render each one
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
        try:
            await conn.execute("INSERT INTO reporters (reporter_id, trust) SELECT 'mob-' || n, 0.5"
                               " FROM generate_series(1, $1::int) n", brigade)
            await conn.execute(
                """INSERT INTO reports (report_id, reporter_id, content_id, reason, surface, reported_at, contribution)
                   SELECT 'r-' || n, 'mob-' || n, $2, 'drugs', 'search', now() - interval '1 hour' + n * interval '1 ms',
                          0.5
                   FROM generate_series(1, $1::int) n""", brigade, item["id"])
        finally:
            await conn.close()
        page = await console_page(api, item["id"])
    assert f"{brigade} report(s)" in page and "weighs 2500.0" in page
    assert f"The latest 100 are shown; the {brigade - 100} earlier ones count in the weight above." in page
    assert page.count("mob-") == 100 and "mob-5000<" in page and "mob-4900<" not in page
    history = page.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert history.count("<tr>") == 1 + 200 and f"the latest 200 of {brigade + 1}" in page
