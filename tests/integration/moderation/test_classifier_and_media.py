"""The classifier and the PDQ media banks at work in moderation (issue 20, items 3 to 5), on the real broker and
Postgres through the moderation service: content is checked when the platform describes it, report or not, and
again when the banks or the model change."""
from __future__ import annotations

import io
from pathlib import Path

import asyncpg
import httpx
import numpy as np
from PIL import Image, ImageEnhance

from moderation.classifier import Classifier
from moderation.config import MediaBank
from moderation.detection import Checks
from moderation.media import PdqHash, pdq_hash
from tests.integration.moderation.support import (
    about, auth, config, console_page, content, publish, report, running_moderation,
)
from tests.support.console import csrf_token
from tests.support.kafka import wait_for_events
from tests.support.stack import service_settings
from tests.support.waiting import until

BANK = Path(__file__).parent / "data" / "known-bad-test.csv"
KNOWN = PdqHash.from_hex("22cd334d3ed62ebdd902072f9fb7dedf399b033c0717001fcf560ad00c25f414")
DRUG_SHOP = dict(title="Закладки Москва",
                 text="Мефедрон, гашиш, шишки: закладки по всему городу за 30 минут, оплата в биткоинах")


def synthetic(seed: int) -> Image.Image:
    """Upscaled noise: the bank's first hash is this image's with seed 20 (no real material anywhere)."""
    noise = np.random.RandomState(seed).rand(16, 16) * 255
    return Image.fromarray(noise.astype("uint8")).resize((256, 256), Image.BICUBIC).convert("RGB")


def near_duplicate_hash() -> PdqHash:
    """The known image resized, brightened and saved as a poor JPEG: another hash, near the bank's."""
    altered = ImageEnhance.Brightness(synthetic(20).resize((200, 180))).enhance(1.15)
    out = io.BytesIO()
    altered.save(out, "JPEG", quality=60)
    return pdq_hash(out.getvalue())


def media(probe: PdqHash) -> list[dict]:
    return [{"media_id": "avatar", "pdq": probe.hex, "quality": probe.quality}]


def checked_config(**overrides):
    values = dict(media_banks=[MediaBank(file=BANK, id="known-abuse-test")], recheck_idle_seconds=0.5,
                  recheck_pause_seconds=0.05)
    values.update(overrides)
    return config(**values)


async def fetch(database_url: str, sql: str, *args):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def checked(database_url: str, content_ids: list[str], fingerprint: str | None = None) -> list:
    """The items' check rows once every one was checked (with this fingerprint, when given)."""
    rows = await fetch(database_url, """SELECT content_id, model_score, model_version, checked_with
                                        FROM platform_content WHERE content_id = ANY($1) AND checked_with IS NOT NULL
                                          AND ($2::text IS NULL OR checked_with = $2)""", content_ids, fingerprint)
    return rows if len(rows) == len(content_ids) else []


async def queued(api: httpx.AsyncClient, content_id: str) -> dict | None:
    answer = (await api.get("/moderation/queue", params={"limit": 1000}, headers=auth("mod-token"))).json()
    return next((i for i in answer if i["content_id"] == content_id), None)


async def test_a_drug_delivery_channel_with_no_report_is_delisted_by_the_classifier_with_its_model_version(
        bootstrap, database_url):
    shop = content(**DRUG_SHOP)  # no text bank matches it: the model alone finds it
    version = Classifier.load().version
    async with running_moderation(service_settings(bootstrap, database_url), checked_config()) as api:
        await publish(bootstrap, shop)
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(shop["id"]))
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(shop["id"]))
        entry = await until(lambda: queued(api, shop["id"]))
        [row] = await checked(database_url, [shop["id"]])
    assert await fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1", shop["id"]) == []
    assert delisted["data"]["category"] == "drugs"
    assert sor["data"]["action"] == "delist" and sor["data"]["automated_detection"] is True
    assert sor["data"]["automated_decision"] == "FULLY" and sor["data"]["source_type"] == "SOURCE_VOLUNTARY"
    assert f"model {version}" in sor["data"]["facts"]
    assert row["model_version"] == version and row["model_score"] >= Classifier.load().metadata.threshold
    assert entry["state"] == "delisted" and entry["model_score"] == row["model_score"]  # for a human to confirm
    assert entry["automated"] == f"classifier:{version}"


async def test_a_pharmacy_and_a_hunting_club_are_not_delisted_nor_queued(bootstrap, database_url):
    pharmacy = content(title="City Pharmacy", text="Prescription medicines, opening hours and pharmacist advice")
    club = content(title="Hunting club Bavaria",
                   text="Our hunting club meets on Saturdays; rifle licences, safety courses and game cooking")
    async with running_moderation(service_settings(bootstrap, database_url), checked_config()) as api:
        await publish(bootstrap, pharmacy)
        await publish(bootstrap, club)
        rows = await until(lambda: checked(database_url, [pharmacy["id"], club["id"]]))
        ids = [pharmacy["id"], club["id"]]
        states = await fetch(database_url, "SELECT state FROM content WHERE content_id = ANY($1)", ids)
        decisions = await fetch(database_url, "SELECT 1 FROM decisions WHERE content_id = ANY($1)", ids)
        assert await queued(api, pharmacy["id"]) is None and await queued(api, club["id"]) is None
    assert all(r["model_score"] < 0.5 for r in rows)  # checked and scored, the same transaction as any action
    assert [s["state"] for s in states] == ["listed", "listed"] and decisions == []


async def test_a_near_duplicate_of_a_known_bad_image_is_delisted_with_no_report(bootstrap, database_url):
    probe = near_duplicate_hash()
    assert 0 < probe.distance(KNOWN) <= 31  # not the bank's hash, but within the default distance
    unrelated = pdq_hash(synthetic(3))
    item, other = content(title="Family photos"), content(title="Holiday photos")
    async with running_moderation(service_settings(bootstrap, database_url), checked_config()) as api:
        await publish(bootstrap, item, media=media(probe))
        await publish(bootstrap, other, media=media(unrelated))
        [delisted] = await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(item["id"]))
        entry = await until(lambda: queued(api, item["id"]))
        await until(lambda: checked(database_url, [other["id"]]))
        other_state = await fetch(database_url, "SELECT state FROM content WHERE content_id = $1", other["id"])
    assert await fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1", item["id"]) == []
    assert delisted["data"]["category"] == "child_abuse"
    assert sor["data"]["automated_detection"] is True and "pdq:known-abuse-test" in sor["data"]["facts"]
    assert sor["data"]["content_type"] == ["CONTENT_TYPE_TEXT", "CONTENT_TYPE_IMAGE"]
    assert entry["urgent"]
    assert [r["state"] for r in other_state] == ["listed"]


async def test_a_model_or_bank_change_rechecks_public_content_already_there(bootstrap, database_url):
    shop, photos = content(**DRUG_SHOP), content(title="Family photos")
    hiking = content()
    before = checked_config(classifier=False, media_banks=[])
    async with running_moderation(service_settings(bootstrap, database_url), before):
        for item, extra in ((shop, {}), (photos, {"media": media(near_duplicate_hash())}), (hiking, {})):
            await publish(bootstrap, item, **extra)
        old = await until(lambda: checked(database_url, [shop["id"], photos["id"], hiking["id"]]))
    assert await fetch(database_url, "SELECT 1 FROM decisions WHERE content_id = ANY($1)",
                       [shop["id"], photos["id"]]) == []
    after = checked_config(recheck_batch=1)  # the model turned on and a PDQ bank added: no event about the content
    fingerprint = Checks.load(after).fingerprint
    assert fingerprint != old[0]["checked_with"]
    async with running_moderation(service_settings(bootstrap, database_url), after) as api:
        [by_model] = await wait_for_events(bootstrap, "moderation.decisions", about(shop["id"]))
        [by_bank] = await wait_for_events(bootstrap, "moderation.decisions", about(photos["id"]))
        rows = await until(lambda: checked(database_url, [shop["id"], photos["id"], hiking["id"]], fingerprint))
        done = await until(lambda: metric_is(api, "warden_moderation_recheck_pending", 0.0))
        rechecked = await metric(api, "warden_moderation_rechecked_total")
    assert f"model {Classifier.load().version}" in by_model["data"]["facts"]
    assert "pdq:known-abuse-test" in by_bank["data"]["facts"]
    assert {r["content_id"] for r in rows if r["model_version"]} == {shop["id"], photos["id"], hiking["id"]}
    assert done and rechecked >= 3  # the three items, one per batch (other tests' content may add to it)


async def metric(api: httpx.AsyncClient, name: str) -> float | None:
    text = (await api.get("/metrics")).text
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), None)


async def metric_is(api: httpx.AsyncClient, name: str, value: float) -> bool:
    return await metric(api, name) == value


class CountingChecks(Checks):
    """The real checks, counting how often they run on each item."""
    calls: dict[str, int] = {}

    def check(self, content):
        self.calls[content.content_id] = self.calls.get(content.content_id, 0) + 1
        return super().check(content)


async def test_reports_never_run_the_classifier_and_a_claimed_drug_shop_is_not_scored(bootstrap, database_url):
    cfg = checked_config()
    real = Checks.load(cfg)
    checks = CountingChecks(real.text, real.media, real.classifier, cfg, real.fingerprint)
    hiking = content()
    async with running_moderation(service_settings(bootstrap, database_url), cfg, checks=checks):
        await publish(bootstrap, hiking)
        await until(lambda: checked(database_url, [hiking["id"]]))
        claim = dict(hiking, **DRUG_SHOP)  # what the reporters say it is
        for n in range(5):
            await report(bootstrap, claim, f"claimer-{n}-{hiking['id']}", "drugs")
        await until(lambda: fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1 HAVING count(*) = 5",
                                  hiking["id"]))
        [row] = await checked(database_url, [hiking["id"]])
        decisions = await fetch(database_url, "SELECT 1 FROM decisions WHERE content_id = $1", hiking["id"])
    assert CountingChecks.calls[hiking["id"]] == 1  # on arrival; five reports later, not once more
    assert row["model_score"] < 0.5 and decisions == []


async def test_content_a_moderator_restored_is_queued_not_delisted_again_by_the_model(bootstrap, database_url):
    shop = content(**DRUG_SHOP)
    async with running_moderation(service_settings(bootstrap, database_url), checked_config()) as api:
        await publish(bootstrap, shop)
        await wait_for_events(bootstrap, "search.delistings", about(shop["id"]))
        await until(lambda: queued(api, shop["id"]))
        restored = await api.post(f"/moderation/content/{shop['id']}/decisions", json={"action": "restore"},
                                  headers=auth("mod-token"))
        assert restored.status_code == 200, restored.text
        await until(lambda: fetch(database_url, "SELECT 1 FROM content WHERE content_id = $1 AND state = 'listed'",
                                  shop["id"]))
        await publish(bootstrap, shop, text=DRUG_SHOP["text"] + " Новые позиции каждый день.")  # changed again
        entry = await until(lambda: queued(api, shop["id"]))
        delists = await fetch(database_url, "SELECT 1 FROM decisions WHERE content_id = $1 AND action = 'delist'",
                              shop["id"])
    assert entry["state"] == "listed" and entry["source"] == "proactive"  # for the humans, who decided before
    assert len(delists) == 1


async def test_a_projected_row_that_no_longer_validates_does_not_stop_the_recheck_job(bootstrap, database_url):
    shop = content(**DRUG_SHOP)
    async with running_moderation(service_settings(bootstrap, database_url), checked_config(classifier=False)):
        await publish(bootstrap, shop)
        await until(lambda: checked(database_url, [shop["id"]]))
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "moderation"})
    try:  # a row the contract would refuse (kind), as an operator's hand-edit might leave it
        await conn.execute("""INSERT INTO platform_content (content_id, kind, owner_account_id, title,
                                  public_in_search, created_at, updated_at)
                              VALUES ('aaa-odd', 'message', NULL, 'odd', true, now(), now())""")
    finally:
        await conn.close()
    after = checked_config(recheck_batch=1)
    fingerprint = Checks.load(after).fingerprint
    async with running_moderation(service_settings(bootstrap, database_url), after) as api:
        [sor] = await wait_for_events(bootstrap, "moderation.decisions", about(shop["id"]))
        await until(lambda: checked(database_url, ["aaa-odd", shop["id"]], fingerprint))
        assert (await api.get("/readyz")).status_code == 200
    assert sor["data"]["action"] == "delist"


def section(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"', 1)[1].split("</dd>", 1)[0].split("</table>", 1)[0]


async def test_the_console_shows_what_the_checks_found_and_the_owners_other_decisions(bootstrap, database_url):
    """Issue 21, item 1: the classifier's score with the words that drove it, the bank and distance of a media
    match (never the image), and the decisions on the owner's other content."""
    owner = "acc-evidence-owner"
    shop = content(owner_account_id=owner, **DRUG_SHOP)
    hiking = content(owner_account_id=owner)
    async with running_moderation(service_settings(bootstrap, database_url), checked_config()) as api:
        await publish(bootstrap, shop, media=media(near_duplicate_hash()))
        await wait_for_events(bootstrap, "search.delistings", about(shop["id"]))
        await publish(bootstrap, hiking)
        await report(bootstrap, hiking, "rep-evidence", reason="spam")
        await until(lambda: fetch(database_url, "SELECT 1 FROM reports WHERE content_id = $1", hiking["id"]))
        shop_page = await console_page(api, shop["id"])
        hiking_page = await console_page(api, hiking["id"])

    classifier = section(shop_page, "classifier")
    assert "drugs" in classifier and "strongest words:" in classifier
    assert any(word in classifier.lower() for word in ("закладки", "мефедрон", "гашиш", "шишки"))
    banked = section(shop_page, "media")
    distance = near_duplicate_hash().distance(KNOWN)
    assert "avatar</span>: in" in banked and "known-abuse-test" in banked and f"distance {distance} of 256" in banked
    assert "<img" not in shop_page
    assert "pdq:known-abuse-test" in section(shop_page, "matches")
    owner_history = section(hiking_page, "owner-decisions")
    assert shop["id"] in owner_history and "delist" in owner_history
    assert "no bank matches" in section(hiking_page, "matches")


async def test_images_are_blurred_until_a_moderator_reveals_one_and_the_reveal_is_recorded(bootstrap, database_url):
    """Issue 21, item 1: with the platform's media viewer configured, an item's images are shown blurred; a
    reveal is an explicit, CSRF-checked POST, recorded with who and when, and unblurs for that moderator only."""
    item = content(title="Family photos")
    cfg = checked_config(media_url="https://media.example.test/{content_id}/{media_id}")
    async with running_moderation(service_settings(bootstrap, database_url), cfg) as api:
        await publish(bootstrap, item, media=media(near_duplicate_hash()))
        await wait_for_events(bootstrap, "search.delistings", about(item["id"]))
        page = await console_page(api, item["id"])
        image = f'src="https://media.example.test/{item["id"]}/avatar"'
        assert image in page and "filter: blur(24px)" in section(page, "media")
        shown = await api.get(f"/console/content/{item['id']}")
        assert "img-src https://media.example.test" in shown.headers["content-security-policy"]

        forged = await api.post("/console/reveal", data={"content_id": item["id"], "media_id": "avatar"})
        csrf = csrf_token(page)
        unknown = await api.post("/console/reveal",
                                 data={"csrf_token": csrf, "content_id": item["id"], "media_id": "not-listed"})
        assert (forged.status_code, unknown.status_code) == (403, 422)
        assert await fetch(database_url, "SELECT 1 FROM media_reveals WHERE content_id = $1", item["id"]) == []

        revealed = await api.post("/console/reveal", data={"csrf_token": csrf, "content_id": item["id"],
                                                           "media_id": "avatar"}, follow_redirects=True)
        assert "filter: blur" not in section(revealed.text, "media") and "revealed to you" in revealed.text
        [row] = await fetch(database_url, "SELECT moderator, media_id FROM media_reveals WHERE content_id = $1",
                            item["id"])
        assert (row["moderator"], row["media_id"]) == ("maria", "avatar")

        async with httpx.AsyncClient(base_url=str(api.base_url)) as other:  # alex has revealed nothing
            form = (await other.get("/console/signin")).text
            await other.post("/console/signin", data={
                "token": "appeal-token", "csrf_token": csrf_token(form)})
            assert "filter: blur(24px)" in section((await other.get(f"/console/content/{item['id']}")).text, "media")
