"""Moderators in a real browser: the queue in priority order, a delisting, an appeal overturned."""
from __future__ import annotations

import re
import uuid

import asyncpg

from tests.integration.moderation.support import (about, appeal, config, content, publish, report,
                                                  running_moderation, until)
from tests.support.kafka import wait_for_events
from tests.support.stack import service_settings

DELISTED, RELISTED = "warden.search.content.delisted.v1", "warden.search.content.relisted.v1"
MODERATOR = "mod-token"  # tests/integration/moderation/support.py: maria, role moderator
APPEALS = "appeal-token"  # alex, roles moderator + appeals: someone other than the moderator who delisted


async def queued(database_url: str, content_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM moderation.queue WHERE content_id = $1", content_id))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


async def open_appeal(database_url: str, appeal_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT status = 'open' FROM moderation.appeals WHERE appeal_id = $1", appeal_id)
    finally:
        await conn.close()


async def test_moderator_delists_a_queued_channel_then_overturns_the_appeal(
        browser, screenshot, bootstrap, database_url, tmp_path):
    channel = content(title="Party supplies, fast delivery")
    banned = content(title="KNOWN-TERROR-SAMPLE-0001")
    settings = service_settings(bootstrap, database_url)
    async with running_moderation(settings, config()):
        await publish(bootstrap, channel)
        await publish(bootstrap, banned)  # the platform's title matches a bank: delisted on arrival, first
        await report(bootstrap, channel, f"user-{uuid.uuid4().hex[:6]}", "scam")  # a new reporter: 0.5
        for reporter in (f"user-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}"):
            await report(bootstrap, channel, reporter, "drugs")          # 2 new reporters: 2 x 1.0, 2.5: review
        await until(lambda: queued(database_url, channel["id"]))
        await until(lambda: queued(database_url, banned["id"]))
        base = f"http://127.0.0.1:{settings.http_port}"

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/console/")
        await page.get_by_label("Your access token").fill(MODERATOR)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{base}/console/")
        rows = [await r.get_attribute("data-content-id") for r in await page.locator("#queue tbody tr").all()]
        assert rows.index(banned["id"]) < rows.index(channel["id"])  # high-severity bank match first
        await screenshot(page, "queue")

        await page.locator(f'tr[data-content-id="{channel["id"]}"]').get_by_role("link").click()
        await page.wait_for_url(re.compile(r".*/console/content/.+"))
        assert await page.locator("#content-state").inner_text() == "listed"
        assert [await h.inner_text() for h in await page.locator("h3").all()][0].startswith("drugs 2 report(s)")
        assert await page.locator("#history tbody tr").count() == 3
        await screenshot(page, "content")
        await page.get_by_label("Note for the statement of reasons (optional)").fill("Sells narcotics openly")
        await page.get_by_role("button", name="Delist", exact=True).click()
        await page.wait_for_url(re.compile(r".*done=delist$"))
        assert await page.locator("#content-state").inner_text() == "delisted"
        await screenshot(page, "delisted")
        [delisted] = await wait_for_events(bootstrap, "search.delistings",
                                           lambda e: about(channel["id"])(e) and e["type"] == DELISTED)
        assert delisted["data"]["category"] == "drugs"

        # A moderator token without the appeals role sees the queue but not the appeals.
        answer = await page.goto(f"{base}/console/appeals")
        assert answer.status == 403 and "appeals" in await page.get_by_role("alert").inner_text()

        appeal_id = await appeal(bootstrap, channel["id"], channel["owner_account_id"])
        await until(lambda: open_appeal(database_url, appeal_id))
        page = await (await browser.new_context(viewport={"width": 1366, "height": 900})).new_page()
        await page.goto(f"{base}/console/signin")
        await page.get_by_label("Your access token").fill(APPEALS)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{base}/console/")
        await page.get_by_role("link", name="Appeals").click()
        row = page.locator(f'tr[data-appeal-id="{appeal_id}"]')
        assert "It is a hiking club" in await row.locator("td.statement").inner_text()  # the appellant's statement
        await row.get_by_label("Note (optional)").fill("The owner showed it is a party-supplies shop")
        await screenshot(page, "appeals")
        await row.get_by_role("button", name="Overturn and relist").click()
        await page.wait_for_url(re.compile(r".*done=overturn$"))
        assert "overturned" in await page.get_by_role("status").inner_text()
        assert not [u for u in [page.url] + [await a.get_attribute("href") for a in await page.locator("a").all()]
                    if channel["owner_account_id"] in (u or "")]
        [relisted] = await wait_for_events(bootstrap, "search.delistings",
                                           lambda e: about(channel["id"])(e) and e["type"] == RELISTED)
        assert relisted["data"]["content_id"] == channel["id"]
