"""Reviewers in a real browser: sign in, open a pending case, decide; the decision reaches the topics.

Pages are shown at 1280x800 (the screenshots' size); the reviewer's walk scans each page with axe-core."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from warden.keys import key_id
from warden.signing import generate_keypair

from tests.integration.legal_review.support import publish_received, received, registered, status_of
from tests.integration.legal_review.test_clarification import AMENDED, answer
from tests.support.kafka import produce_event, wait_for_events
from tests.support.requests import new_authority, register_authority
from tests.support.stack import running, service_settings

TOKENS = {"tok-alice-7f3": {"reviewer": "alice", "role": "reviewer"},
          "tok-bob-91c": {"reviewer": "bob", "role": "reviewer"}}
SUBSCRIBERS = "platform.subscribers"
VIEWPORT = {"width": 1280, "height": 800}
REASON = "Reason (required, kept in the audit trail)"


def of_case(case_id: str):
    return lambda e: e["data"].get("case_id") == case_id


async def sign_in(browser, base: str, token: str, screenshot=None):
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    await page.goto(f"{base}/console/")  # not signed in: sent to the sign-in form
    assert "/console/signin" in page.url
    if screenshot:
        await screenshot(page, "signin")
    await page.get_by_label("Your access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/console/")
    return page


async def test_reviewer_approves_a_pending_case_and_the_disclosure_is_issued(
        browser, screenshot, bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", generate_keypair()["private_key"])
    now = datetime.now(timezone.utc)
    court = new_authority("court", "FR")
    # A judicial emergency order: flagged `emergency`, one reviewer decides.
    event = received(court, emergency=True, emergency_justification="Credible threat to a child's life tonight")
    case_id, account_id = event["case_id"], event["request"]["suspect"]["account_id"]
    await produce_event(bootstrap, SUBSCRIBERS, "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": None, "phone_number": "+33612345678", "country": "FR",
        "updated_at": (now - timedelta(days=30)).isoformat()})
    await produce_event(bootstrap, SUBSCRIBERS, "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.23", "observed_at": (now - timedelta(days=3)).isoformat()})
    review_settings = service_settings(bootstrap, database_url)
    async with running("legal-review", review_settings), \
            running("disclosure", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, case_id, "pending_review")
        base = f"http://127.0.0.1:{review_settings.http_port}"

        page = await sign_in(browser, base, "tok-alice-7f3", screenshot)
        row = page.locator(f'tr[data-case-id="{case_id}"]')
        assert "emergency" in await row.inner_text()
        await screenshot(page, "queue")
        await row.get_by_role("link").click()
        await page.wait_for_url(f"{base}/console/cases/{case_id}")
        assert await page.locator("#case-status").inner_text() == "pending review"
        assert await page.locator("#rules tbody tr").count() >= 14  # every policy rule, with its result
        assert "emergency.justified" in await page.locator("#rules").inner_text()
        assert "case.opened" in await page.locator("#audit").inner_text()
        await screenshot(page, "case")

        await page.get_by_label("Reason (required, kept in the audit trail)").fill(
            "Imminent threat; the order is judicial and specific")
        await page.get_by_role("button", name="Approve", exact=True).click()
        await page.wait_for_url(re.compile(r".*done=approved$"))
        assert await page.locator("#case-status").inner_text() == "approved"
        assert "alice" in await page.locator("#reviews").inner_text()
        assert "case.decided" in await page.locator("#audit").inner_text()
        await screenshot(page, "approved")

        [decision] = await wait_for_events(bootstrap, "legal.requests.decided", of_case(case_id))
        assert decision["type"] == "warden.legal.request.approved.v1"
        assert decision["data"]["decided_by"] == ["alice"]
        [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued", of_case(case_id), timeout=30)
        assert issued["data"]["account_id"] == account_id
        assert not [u for u in await _urls_seen(page) if account_id in u or "+33612345678" in u]


async def _urls_seen(page) -> list[str]:
    return [page.url] + [await a.get_attribute("href") or "" for a in await page.locator("a").all()]


async def test_a_two_reviewer_case_needs_a_second_reviewer(browser, screenshot, bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    # An unlisted offense: a human decides, and it takes two reviewers.
    event = received(court, offense={"category": "other", "statute": "Art. 1", "description": "Unlisted offense"})
    case_id = event["case_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings):
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, case_id, "pending_review")
        base = f"http://127.0.0.1:{settings.http_port}"

        alice = await sign_in(browser, base, "tok-alice-7f3")
        await alice.goto(f"{base}/console/cases/{case_id}")
        await alice.get_by_label("Reason (required, kept in the audit trail)").fill("Offense is serious enough")
        await alice.get_by_role("button", name="Approve", exact=True).click()
        await alice.wait_for_url(re.compile(r".*done=recorded$"))
        assert await alice.locator("#case-status").inner_text() == "pending review"
        assert "alice approved first; 1 more approval(s) needed" in await alice.locator("#waiting").inner_text()
        await screenshot(alice, "first-approval")
        # The same reviewer cannot be the second one.
        await alice.get_by_label("Reason (required, kept in the audit trail)").fill("Approving again")
        await alice.get_by_role("button", name="Approve", exact=True).click()
        assert "another reviewer" in await alice.locator("#error").inner_text()
        assert await alice.locator("#case-status").inner_text() == "pending review"
        await screenshot(alice, "same-reviewer-refused")
        queue = await alice.goto(f"{base}/console/")
        assert queue.ok and "first: alice" in await alice.locator(f'tr[data-case-id="{case_id}"]').inner_text()

        bob = await sign_in(browser, base, "tok-bob-91c")
        await bob.goto(f"{base}/console/cases/{case_id}")
        assert "alice approved first" in await bob.locator("#waiting").inner_text()
        await bob.get_by_label("Reason (required, kept in the audit trail)").fill("Agree with alice")
        await bob.get_by_role("button", name="Approve", exact=True).click()
        await bob.wait_for_url(re.compile(r".*done=approved$"))
        assert await bob.locator("#case-status").inner_text() == "approved"
        await screenshot(bob, "second-approval")
        [decision] = await wait_for_events(bootstrap, "legal.requests.decided", of_case(case_id))
        assert decision["data"]["decided_by"] == ["alice", "bob"]


async def test_bad_token_shows_a_sign_in_error_and_forms_need_their_csrf_token(
        browser, screenshot, bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    event = received(court, offense={"category": "other", "statute": "Art. 1", "description": "Unlisted offense"})
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings):
        base = f"http://127.0.0.1:{settings.http_port}"
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        await page.goto(f"{base}/console/signin")
        await page.get_by_label("Your access token").fill("tok-mallory")
        async with page.expect_response(f"{base}/console/signin") as answer:
            await page.get_by_role("button", name="Sign in").click()
        assert (await answer.value).status == 401
        assert "not valid" in await page.get_by_role("alert").inner_text()
        assert await page.get_by_label("Your access token").is_visible()
        await screenshot(page, "bad-token")
        cookie = next(c for c in await context.cookies() if c["name"] == "warden_review_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, event["case_id"], "pending_review")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            form = (await http.get("/console/signin")).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            assert (await http.post("/console/signin", data={"token": "tok-alice-7f3"})).status_code == 403
            signed = await http.post("/console/signin", data={"token": "tok-alice-7f3", "csrf_token": csrf})
            assert signed.status_code == 303
            page_html = (await http.get(f"/console/cases/{event['case_id']}")).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)
            url = f"/console/cases/{event['case_id']}/decisions"
            altered = ("y" if csrf[0] == "x" else "x") + csrf[1:]  # one character off, never the token itself
            for forged in ({}, {"csrf_token": altered}):
                refused = await http.post(url, data={"action": "reject", "reason": "forged request", **forged})
                assert refused.status_code == 403 and "Nothing was changed" in refused.text
            unknown = await http.get(f"/console/cases/{uuid.uuid4()}")
            assert unknown.status_code == 404
            still = await http.get(f"/review/cases/{event['case_id']}",
                                   headers={"Authorization": "Bearer tok-alice-7f3"})
            assert still.json()["status"] == "pending_review" and still.json()["reviews"] == []


async def test_reviewer_asks_the_authority_a_question_from_the_console(browser, bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    event = received(court, offense={"category": "extremism_speech", "statute": "Art. 421-2-5",
                                     "description": "Channel posts"})
    case_id = event["case_id"]
    review_settings = service_settings(bootstrap, database_url)
    async with running("legal-review", review_settings):
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, case_id, "pending_review")
        base = f"http://127.0.0.1:{review_settings.http_port}"
        page = await sign_in(browser, base, "tok-bob-91c")
        await page.goto(f"{base}/console/cases/{case_id}")
        question = "Which posts of the channel are the suspect's own?"
        await page.get_by_label(re.compile(r"^Question")).fill(question)
        await page.get_by_role("button", name="Ask instead of deciding").click()
        await page.wait_for_url(re.compile(r".*done=asked$"))
        status = await page.locator("#case-status").inner_text()
        asked = await page.locator("#clarifications").inner_text()
        audit = await page.locator("#audit").inner_text()
        decide_form = await page.locator("#h-decide").count()
        [told] = await wait_for_events(bootstrap, "legal.requests.progress", lambda e: of_case(case_id)(e)
                                       and e["data"]["status"] == "needs_clarification")
        await page.goto(f"{base}/console/")
        waiting = await page.locator(f'#asking tr[data-case-id="{case_id}"]').count()
        queued = await page.locator(f'#queue tr[data-case-id="{case_id}"]').count()

    assert status == "needs clarification"
    assert question in asked and "bob" in asked and "waiting for the authority" in asked
    assert "case.clarification_requested" in audit
    assert decide_form == 0  # no decision while the authority is asked
    assert (waiting, queued) == (1, 0)  # listed as waiting for the answer, not in the review queue
    assert told["data"]["clarification"]["question"] == question


async def _keys_known(database_url: str, authority_id: str, count: int, timeout: float = 20) -> None:
    deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
    while True:
        conn = await asyncpg.connect(database_url)
        try:
            known = await conn.fetchval("SELECT count(*) FROM legal_review.authority_keys WHERE authority_id = $1",
                                        authority_id)
        finally:
            await conn.close()
        if known >= count:
            return
        assert datetime.now(timezone.utc) < deadline, f"{known} of {count} keys after {timeout}s"
        await asyncio.sleep(0.1)


async def _reload_until(page, selector: str, text: str, timeout: float = 20) -> str:
    """Reload the page until `selector` shows `text` (the consumer applies events in its own time)."""
    deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
    while True:
        await page.reload()
        shown = await page.locator(selector).inner_text() if await page.locator(selector).count() else ""
        if text in shown:
            return shown
        assert datetime.now(timezone.utc) < deadline, f"{selector} never showed {text!r}: {shown!r}"
        await asyncio.sleep(0.25)


async def test_a_reviewers_case(browser, screenshot, accessible, bootstrap, database_url, monkeypatch):
    """Sign in, the countdown, the signed request verified again, the authority's history, take the case
    (another reviewer sees who holds it and cannot decide it), an internal note, a question answered by the
    authority's signed amendment, and four eyes: approved by alice, then by bob."""
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    court = new_authority("court", "FR")
    rotated = generate_keypair()
    earlier = received(court, emergency=True, emergency_justification="Credible threat to a child's life tonight")
    event = received(court, offense={"category": "other", "statute": "Art. 1", "description": "Unlisted offense"})
    case_id = event["case_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as api:
        await registered(bootstrap, database_url, court)
        await register_authority(bootstrap, dict(court, public_key=rotated["public_key"]))  # a key rotation
        await _keys_known(database_url, court["authority_id"], 2)
        for e in (earlier, event):
            await publish_received(bootstrap, e)
            await status_of(bootstrap, e["case_id"], "pending_review")
        base = f"http://127.0.0.1:{settings.http_port}"

        alice = await sign_in(browser, base, "tok-alice-7f3")
        rows = [await r.get_attribute("data-case-id") for r in await alice.locator("#queue tbody tr").all()]
        assert rows.index(earlier["case_id"]) < rows.index(case_id)  # the emergency first
        row = alice.locator(f'#queue tr[data-case-id="{case_id}"]')
        assert re.fullmatch(r"\d+ (d \d+ h|h( \d+ min)?|min) left", await row.locator(".countdown").inner_text())
        assert "nobody" in await row.locator(".holder").inner_text()
        await accessible(alice)
        await screenshot(alice, "queue")

        await row.get_by_role("link").click()
        await alice.wait_for_url(f"{base}/console/cases/{case_id}")
        assert (await alice.locator("#countdown").inner_text()).endswith("left")
        assert (await alice.locator("#verification").inner_text()) == "signature verifies"
        assert await alice.locator("#key-id").inner_text() == key_id(court["public_key"])
        await alice.get_by_text("The request exactly as the authority signed it").click()
        signed_text = await alice.locator("#signed-request pre").inner_text()
        assert json.loads(signed_text)["signature"] == event["submitted"]["signature"]
        keys = await alice.locator("#authority-keys tbody tr").all_inner_texts()
        assert len(keys) == 2 and "this case" in keys[0] and key_id(rotated["public_key"]) in keys[1]
        assert "1 pending review" in await alice.locator("#earlier-counts").inner_text()
        assert await alice.locator(f'#earlier-cases a[href="/console/cases/{earlier["case_id"]}"]').count() == 1
        four_eyes = await alice.locator("#four-eyes").inner_text()
        assert "2, no supervisor needed" in four_eyes and "nobody yet" in four_eyes
        assert "2 more approvals" in four_eyes
        await accessible(alice)
        await screenshot(alice, "case")

        await alice.get_by_role("button", name="Take this case").click()
        await alice.wait_for_url(re.compile(r".*done=claimed$"))
        assert "You hold this case until" in await alice.locator("#holder").inner_text()
        bob = await sign_in(browser, base, "tok-bob-91c")
        assert "alice" in await bob.locator(f'#queue tr[data-case-id="{case_id}"] .holder').inner_text()
        await bob.goto(f"{base}/console/cases/{case_id}")
        assert "alice holds this case" in await bob.locator("#holder").inner_text()
        await bob.get_by_label(REASON).fill("Looks fine to me")
        await bob.get_by_role("button", name="Approve", exact=True).click()
        assert "alice has taken this case" in await bob.locator("#error").inner_text()
        assert "nobody yet" in await bob.locator("#approved-by").inner_text()
        await accessible(bob)
        await screenshot(bob, "held-by-alice")

        note = "Call the liaison officer before approving: the statute cited looks wrong."
        await alice.get_by_label("Add a note (internal)").fill(note)
        await alice.get_by_role("button", name="Add the note").click()
        await alice.wait_for_url(re.compile(r".*done=noted"))
        notes = await alice.locator("#notes").inner_text()
        assert note in notes and "alice" in notes
        audit_text = await alice.locator("#audit").inner_text()
        assert "case.note_added" in audit_text and note not in audit_text  # the chain holds its digest only

        question = "Which statute do you rely on? Art. 1 names no offense."
        await alice.get_by_label(re.compile(r"^Question")).fill(question)
        await alice.get_by_role("button", name="Ask instead of deciding").click()
        await alice.wait_for_url(re.compile(r".*done=asked$"))
        assert (await alice.locator("#countdown").inner_text()).startswith("clock paused:")
        assert "Nobody holds this case" in await alice.locator("#holder").inner_text()  # her question ended it
        await screenshot(alice, "asked")
        await alice.goto(f"{base}/console/")
        asking = await alice.locator(f'#asking tr[data-case-id="{case_id}"] .countdown').inner_text()
        assert asking.startswith("clock paused:")

        detail = (await api.get(f"/review/cases/{case_id}", headers={"Authorization": "Bearer tok-alice-7f3"})).json()
        clarification_id = detail["clarifications"][0]["clarification_id"]
        reply = answer(court, event, clarification_id, answer="Art. 222-37 of the penal code: drug trafficking.")
        await produce_event(bootstrap, "legal.requests.amended", AMENDED, reply, source="/warden/intake")
        await alice.goto(f"{base}/console/cases/{case_id}")
        answered = await _reload_until(alice, "#clarifications", reply["answer"])
        assert "alice asked" in answered
        assert await alice.locator("#case-status").inner_text() == "pending review"
        assert "signature verifies" in await alice.locator("#amendments").inner_text()
        assert (await alice.locator("#countdown").inner_text()).endswith("left")
        await accessible(alice)
        await screenshot(alice, "answered")

        await alice.get_by_label(REASON).fill("The authority named the statute; the order is specific")
        await alice.get_by_role("button", name="Approve", exact=True).click()
        await alice.wait_for_url(re.compile(r".*done=recorded$"))
        four_eyes = await alice.locator("#four-eyes").inner_text()
        assert "alice (reviewer)" in await alice.locator("#approved-by").inner_text()
        assert await alice.locator("#still-needed").inner_text() == "1 more approval"
        assert "You have voted on this case" in four_eyes
        await accessible(alice)
        await screenshot(alice, "first-approval")

        await bob.goto(f"{base}/console/cases/{case_id}")
        assert "Nobody holds this case" in await bob.locator("#holder").inner_text()  # alice's vote ended her hold
        await bob.get_by_label(REASON).fill("Agree with alice after the authority's answer")
        await bob.get_by_role("button", name="Approve", exact=True).click()
        await bob.wait_for_url(re.compile(r".*done=approved$"))
        assert await bob.locator("#case-status").inner_text() == "approved"
        assert await bob.locator("#approved-by").inner_text() == "alice (reviewer), bob (reviewer)"
        await accessible(bob)
        await screenshot(bob, "approved")
        [decision] = await wait_for_events(bootstrap, "legal.requests.decided", of_case(case_id))
        assert decision["data"]["decided_by"] == ["alice", "bob"]
        assert note not in json.dumps(decision)  # notes never leave the service


async def _signed_in_client(base: str, token: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/console/signin")).text).group(1)
    assert (await http.post("/console/signin", data={"token": token, "csrf_token": csrf})).status_code == 303
    return http


async def _csrf(http: httpx.AsyncClient, case_id: str) -> str:
    page = (await http.get(f"/console/cases/{case_id}")).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def test_holds_run_out_and_notes_are_internal_escaped_and_audited_by_digest(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", json.dumps(TOKENS))
    monkeypatch.setenv("WARDEN_REVIEW_CLAIM_MINUTES", "0.1")  # 6 s
    court = new_authority("court", "FR")
    event = received(court, offense={"category": "other", "statute": "Art. 1", "description": "Unlisted offense"})
    case_id = event["case_id"]
    settings = service_settings(bootstrap, database_url)
    async with running("legal-review", settings):
        await registered(bootstrap, database_url, court)
        await publish_received(bootstrap, event)
        await status_of(bootstrap, case_id, "pending_review")
        base = f"http://127.0.0.1:{settings.http_port}"
        alice, bob = await _signed_in_client(base, "tok-alice-7f3"), await _signed_in_client(base, "tok-bob-91c")
        url = f"/console/cases/{case_id}"
        try:
            taken = await alice.post(f"{url}/claim", data={"csrf_token": await _csrf(alice, case_id)})
            refused = await bob.post(f"{url}/claim", data={"csrf_token": await _csrf(bob, case_id)})
            by_api = await bob.post(f"/review/cases/{case_id}/decisions", headers={"Authorization": "Bearer tok-bob-91c"},
                                    json={"action": "approve", "reason": "while alice holds it"})
            not_his = await bob.post(f"{url}/release", data={"csrf_token": await _csrf(bob, case_id)})
            forged = [await bob.post(f"{url}/{action}", data={"note": "forged note", **extra})
                      for action in ("claim", "release", "notes") for extra in ({}, {"csrf_token": "x" * 43})]
            note = "<script>alert('x')</script> check the statute"
            noted = await alice.post(f"{url}/notes", data={"note": note, "csrf_token": await _csrf(alice, case_id)})
            page = (await bob.get(url)).text

            async def bob_takes_it_once_alices_hold_ran_out():
                deadline = datetime.now(timezone.utc) + timedelta(seconds=15)
                while True:
                    answer = await bob.post(f"{url}/claim", data={"csrf_token": await _csrf(bob, case_id)})
                    if answer.status_code == 303:
                        return answer
                    assert datetime.now(timezone.utc) < deadline, "alice's hold never ran out"
                    await asyncio.sleep(0.2)
            passed_on = await bob_takes_it_once_alices_hold_ran_out()
            alice_now = await alice.post(f"/review/cases/{case_id}/decisions",
                                         headers={"Authorization": "Bearer tok-alice-7f3"},
                                         json={"action": "approve", "reason": "after bob took it"})
        finally:
            await alice.aclose()
            await bob.aclose()
        conn = await asyncpg.connect(database_url)
        try:
            notes = await conn.fetch("SELECT author, note FROM legal_review.case_notes WHERE case_id = $1", case_id)
            audited = await conn.fetch("SELECT actor, detail FROM legal_review.audit_log WHERE case_id = $1"
                                       " AND action = 'case.note_added'", case_id)
        finally:
            await conn.close()

    assert taken.status_code == 303 and taken.headers["location"].endswith("done=claimed")
    assert refused.status_code == 409 and "alice has already taken this case" in refused.text
    assert by_api.status_code == 409 and "held_by_another" in by_api.text
    assert not_his.status_code == 409 and "You do not hold this case" in not_his.text
    assert [f.status_code for f in forged] == [403] * 6
    assert noted.status_code == 303
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; check the statute" in page and "<script>alert" not in page
    assert "<strong>alice</strong> holds this case" in page
    assert passed_on.headers["location"].endswith("done=claimed")
    assert alice_now.status_code == 409 and "bob has taken this case" in alice_now.text
    assert [(r["author"], r["note"]) for r in notes] == [("alice", note)]  # the forged ones changed nothing
    [(actor, detail)] = [(r["actor"], json.loads(r["detail"])) for r in audited]
    assert actor == "alice" and detail["sha256"] == hashlib.sha256(note.encode()).hexdigest()
    assert "statute" not in json.dumps(detail)
