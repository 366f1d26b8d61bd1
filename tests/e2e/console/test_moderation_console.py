"""A moderator's shift in a real browser: filter, search, claim, read the evidence, decide by keyboard, land on the
next item, bulk-keep; a second moderator refused on a held item; the appeal decided by someone else. Every page is
scanned with axe-core and screenshotted at 1280x800."""
from __future__ import annotations

import re
import uuid

import asyncpg
import httpx

from bench.legal import start_at_the_end
from tests.integration.moderation.support import (
    about, appeal, auth, config, content, publish, report, running_moderation,
)
from tests.support.kafka import wait_for_events
from tests.support.stack import service_settings
from tests.support.waiting import until

DELISTED, RELISTED = "warden.search.content.delisted.v1", "warden.search.content.relisted.v1"
MODERATOR = "mod-token"  # tests/integration/moderation/support.py: maria, role moderator
APPEALS = "appeal-token"  # alex, roles moderator + appeals: someone other than the moderator who delisted
VIEWPORT = {"width": 1280, "height": 800}


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


async def sign_in(browser, base: str, token: str):
    page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    await page.goto(f"{base}/console/")
    await page.get_by_label("Your access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/console/")
    return page


async def queue_rows(page) -> list[str]:
    return [await r.get_attribute("data-content-id") for r in await page.locator("#queue tbody tr").all()]


async def test_a_moderators_shift(browser, screenshot, accessible, bootstrap, database_url):
    # The classifier queues it (drugs, below its delisting threshold): a moderator decides.
    drugs = content(title="Party supplies, fast delivery", text="Everything for your party, discreet shipping")
    banned = content(title="KNOWN-TERROR-SAMPLE-0001")
    spam = [content(title=f"Knitting circle {n}") for n in range(2)]  # the reports say spam; the classifier nothing
    settings = service_settings(bootstrap, database_url)
    # The session's broker holds the content and reports of every earlier test: this moderator's queue starts after.
    await start_at_the_end(bootstrap, settings.group_prefix, ("moderation",))
    async with running_moderation(settings, config()):
        for item in (drugs, banned, *spam):
            await publish(bootstrap, item)  # the banned title matches a bank: delisted on arrival, queued first
        await report(bootstrap, drugs, f"user-{uuid.uuid4().hex[:6]}", "scam")  # a new reporter: 0.5
        for reporter in (f"user-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}"):
            await report(bootstrap, drugs, reporter, "drugs")          # 2 new reporters: 2 x 1.0, 2.5: review
        for item in spam:
            await report(bootstrap, item, "org-hotline", "spam")       # a trusted flagger's report is always queued
        for item in (drugs, banned, *spam):
            await until(lambda i=item: queued(database_url, i["id"]))
        base = f"http://127.0.0.1:{settings.http_port}"

        # Sign in: the whole queue, severity first, every page under the strict CSP.
        page = await sign_in(browser, base, MODERATOR)
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        rows = await queue_rows(page)
        assert rows[0] == banned["id"] and set(rows) >= {drugs["id"], *(s["id"] for s in spam)}
        assert "high severity" in await page.locator(f'tr[data-content-id="{banned["id"]}"]').inner_text()
        await accessible(page)
        await screenshot(page, "queue")

        # Filter by reason, then search by the owner's account id (POSTed: never in the URL).
        await page.get_by_label("Reason", exact=True).select_option("drugs")
        await page.get_by_role("button", name="Apply").click()
        await page.wait_for_load_state()
        assert await queue_rows(page) == [drugs["id"]]
        assert await page.locator("#count-matching").inner_text() == "1 matching"
        await page.get_by_label("Reason", exact=True).select_option("")
        await page.get_by_label("Content or account id").fill(spam[1]["owner_account_id"])
        await page.get_by_role("button", name="Apply").click()
        await page.wait_for_load_state()
        assert await queue_rows(page) == [spam[1]["id"]] and spam[1]["owner_account_id"] not in page.url
        await screenshot(page, "queue-search")

        # The help overlay, from the keyboard.
        await page.goto(f"{base}/console/?reason=drugs")
        await page.keyboard.press("?")
        help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
        assert await help_dialog.is_visible()
        await accessible(page)
        await screenshot(page, "shortcuts")
        await page.keyboard.press("Escape")
        assert not await help_dialog.is_visible()

        # Open the item by keyboard (j, Enter): it is claimed by maria; the evidence is on the page.
        await page.keyboard.press("j")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/console/content/.+"))
        assert "You hold this item" in await page.locator("#claim").inner_text()
        facts = await page.locator("#platform-facts").inner_text()
        assert "Party supplies, fast delivery" in facts and "discreet shipping" in facts
        assert [await h.inner_text() for h in await page.locator("h3").all()][0].startswith("drugs 2 report(s)")
        await accessible(page)
        await screenshot(page, "content")

        # alex opens the same item: sees who holds it and cannot decide it, in the console or through the API.
        other = await sign_in(browser, base, APPEALS)
        await other.goto(page.url)
        assert "maria holds this item" in await other.locator("#claim").inner_text()
        async with other.expect_response(lambda r: r.request.method == "POST") as answered:
            await other.get_by_role("button", name="Keep in search").click()
        assert (await answered.value).status == 409
        assert "maria holds this item" in await other.get_by_role("alert").inner_text()
        await screenshot(other, "held-by-someone-else")
        async with httpx.AsyncClient(base_url=base) as api:
            refused = await api.post(f"/moderation/content/{drugs['id']}/decisions", headers=auth(APPEALS),
                                     json={"action": "keep"})
            assert refused.status_code == 409 and "maria" in refused.json()["detail"]
            assert (await api.post(f"/moderation/content/{drugs['id']}/claim", headers=auth(APPEALS))).status_code == 409
        assert await queued(database_url, drugs["id"])

        # maria decides by keyboard (note, then d and Enter) and lands on the next item of the queue.
        await page.keyboard.press("n")
        await page.keyboard.type("Sells narcotics openly")
        await page.locator("#note").press("Tab")  # out of the note: keys are shortcuts again
        await page.keyboard.press("d")
        assert await page.evaluate("document.activeElement.value") == "delist"
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*done=delist&prev=.*"))
        assert drugs["id"] not in page.url.split("?")[0]
        assert drugs["id"] in await page.get_by_role("status").first.inner_text()
        [delisted] = await wait_for_events(bootstrap, "search.delistings",
                                           lambda e: about(drugs["id"])(e) and e["type"] == DELISTED)
        assert delisted["data"]["category"] == "drugs"
        await screenshot(page, "next-item")

        # That is the banned item (the drugs item was last): escalate it by keyboard; on to the item after it.
        assert f"/content/{banned['id']}?" in page.url
        await page.keyboard.press("e")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*done=escalate&prev=.*"))
        assert page.url.split("?")[0].rsplit("/", 1)[1] in {s["id"] for s in spam}
        await page.goto(f"{base}/console/?status=escalated")
        assert await queue_rows(page) == [banned["id"]]
        assert "escalated by maria" in await page.locator("#queue tbody tr").inner_text()

        # A bulk keep without the session's CSRF token (a forged cross-site form) changes nothing.
        forged = await page.request.post(f"{base}/console/bulk", form={"action": "keep", "confirm": "yes",
                                                                      "content_id": spam[0]["id"]})
        assert forged.status == 403 and await queued(database_url, spam[0]["id"])

        # Back to the queue (u), select both spam items by keyboard (j, x), bulk keep (b, Enter), confirm.
        await page.goto(f"{base}/console/?reason=spam")
        assert sorted(await queue_rows(page)) == sorted(s["id"] for s in spam)
        for _ in spam:
            await page.keyboard.press("j")
            await page.keyboard.press("x")
        await page.keyboard.press("b")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/console/bulk")
        assert sorted(await page.locator("#selected li").all_inner_texts()) == sorted(s["id"] for s in spam)
        await accessible(page)
        await screenshot(page, "bulk-confirm")
        await page.get_by_role("button", name="Keep 2 item(s) in search").click()
        await page.wait_for_load_state()
        assert sorted(await page.locator("#kept li").all_inner_texts()) == sorted(s["id"] for s in spam)
        await screenshot(page, "bulk-done")
        for item in spam:
            assert not await queued(database_url, item["id"])
        assert blocked == []

        # maria has no appeals role; alex, who did not delist, overturns the owner's appeal.
        answer = await page.goto(f"{base}/console/appeals")
        assert answer.status == 403 and "appeals" in await page.get_by_role("alert").inner_text()
        appeal_id = await appeal(bootstrap, drugs["id"], drugs["owner_account_id"])
        await until(lambda: open_appeal(database_url, appeal_id))
        await other.goto(f"{base}/console/")
        await other.get_by_role("link", name="Appeals").click()
        row = other.locator(f'tr[data-appeal-id="{appeal_id}"]')
        assert "It is a hiking club" in await row.locator("td.statement").inner_text()  # the appellant's statement
        await row.get_by_label("Note (optional)").fill("The owner showed it is a party-supplies shop")
        await accessible(other)
        await screenshot(other, "appeals")
        await row.get_by_role("button", name="Overturn and relist").click()
        await other.wait_for_url(re.compile(r".*done=overturn$"))
        assert "overturned" in await other.get_by_role("status").inner_text()
        assert not [u for u in [other.url] + [await a.get_attribute("href") for a in await other.locator("a").all()]
                    if drugs["owner_account_id"] in (u or "")]
        [relisted] = await wait_for_events(bootstrap, "search.delistings",
                                           lambda e: about(drugs["id"])(e) and e["type"] == RELISTED)
        assert relisted["data"]["content_id"] == drugs["id"]
