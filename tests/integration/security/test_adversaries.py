"""Adversaries against the whole pipeline, each refused or caught with the right reason.

Every service runs as its own process (stderr captured), on the session broker
and one fresh database. At the end, no service's logs hold any seeded phone
number, IP address or username.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from tests.support.database import new_database
from tests.support.kafka import produce_event, wait_for_events
from tests.support.processes import ServiceProcess, moderation_available
from tests.support.requests import new_authority, register_authority, request_data, signed

REVIEW_TOKENS = {"adv-alice": {"reviewer": "alice", "role": "reviewer"},
                 "adv-bob": {"reviewer": "bob", "role": "reviewer"},
                 "adv-carol": {"reviewer": "carol", "role": "supervisor"}}
MODERATION_TOKENS = {"adv-mod": {"name": "maria", "roles": ["moderator"]},
                     "adv-viewer": {"name": "victor", "roles": []}}
HOSTILE = "Robert'); DROP TABLE cases;-- <script>alert(\"x\")</script> {{7*7}} ${jndi:ldap://x} \u202e"
SUBMIT = "warden.legal.request.submitted.v1"
NOW = datetime.now(timezone.utc)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


# Seeded personal data: none of it may ever appear in a service's logs.
SUFFIX = uuid.uuid4().hex[:6]
PEOPLE = [{"account_id": f"adv-acct-{SUFFIX}-{i}", "username": f"Seeded_User_{SUFFIX}_{i}",
           "phone": f"+3361{int(SUFFIX, 16) % 10**5:05d}{i:02d}", "ips": [f"198.18.{i}.{n}" for n in (11, 12)]}
          for i in range(3)]


def seeded_strings() -> list[str]:
    found = []
    for p in PEOPLE:
        found += [p["username"], p["username"].casefold(), p["phone"], p["phone"][1:], *p["ips"]]
    return found


@pytest.fixture(scope="module")
def pipeline(bootstrap, postgres, tmp_path_factory):
    database_url = new_database(postgres, "adv")
    root = tmp_path_factory.mktemp("adversaries")
    extra = {"WARDEN_REVIEW_TOKENS": json.dumps(REVIEW_TOKENS), "WARDEN_MODERATION_TOKENS": json.dumps(MODERATION_TOKENS)}
    names = ["intake", "legal-review", "disclosure"] + (["moderation"] if moderation_available() else [])
    prefix = f"adv-{uuid.uuid4().hex[:6]}"
    services = {n: ServiceProcess(n, bootstrap=bootstrap, database_url=database_url, group_prefix=prefix,
                                  log_dir=root, extra_env=extra).start() for n in names}
    yield database_url, services
    for service in services.values():
        service.terminate()


async def final_status(bootstrap: str, request_id: str, *, count: int = 1, timeout: float = 45) -> list[dict]:
    events = await wait_for_events(bootstrap, "legal.requests.status",
                                   lambda e: e["data"]["request_id"] == request_id and e["data"]["status"] in (
                                       "invalid", "rejected", "disclosed", "no_data", "pending_review"),
                                   count=count, timeout=timeout)
    return [e["data"] for e in events]


def codes(status: dict) -> set[str]:
    return {r["code"] for r in status["reasons"]}


async def submit(bootstrap: str, data: dict) -> dict:
    await produce_event(bootstrap, "legal.requests.submitted", SUBMIT, data)
    return data


async def wait_registered(database_url: str, *authority_ids: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        conn = await asyncpg.connect(database_url)
        try:
            known = 0
            for schema in ("intake", "legal_review", "disclosure"):
                try:
                    known += await conn.fetchval(f"SELECT count(*) FROM {schema}.authorities"
                                                 " WHERE authority_id = ANY($1)", list(authority_ids))
                except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                    pass
        finally:
            await conn.close()
        if known == 3 * len(authority_ids):
            return
        assert asyncio.get_running_loop().time() < deadline, "authorities never reached every service"
        await asyncio.sleep(0.2)


async def test_hostile_requests_are_refused_with_the_right_reason_and_logs_hold_no_personal_data(
        bootstrap, pipeline):
    database_url, services = pipeline
    court, other, revoked, prosecutor = (new_authority("court", "FR"), new_authority("court", "DE"),
                                         new_authority("court", "FR", status="revoked"), new_authority("prosecutor", "FR"))
    for authority in (court, other, revoked, prosecutor):
        await register_authority(bootstrap, authority)
    for person in PEOPLE:
        await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
            "account_id": person["account_id"], "username": person["username"], "phone_number": person["phone"],
            "country": "FR", "updated_at": ago(200)})
        for ip in person["ips"]:
            await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1",
                                {"account_id": person["account_id"], "ip": ip, "observed_at": ago(10)})
    await asyncio.gather(*(s.wait_ready() for s in services.values()))
    await wait_registered(database_url, court["authority_id"], other["authority_id"], revoked["authority_id"],
                          prosecutor["authority_id"])

    def by(authority, **overrides):
        return signed(request_data(authority, **overrides), authority["private_key"])

    by_phone = {"phone_number": PEOPLE[0]["phone"]}
    by_username = {"username": "@" + PEOPLE[1]["username"]}
    honest = await submit(bootstrap, by(court, suspect=by_phone))
    honest_by_name = await submit(bootstrap, by(court, suspect=by_username))
    forged = by(court, suspect=by_phone)
    forged["offense"] = dict(forged["offense"], description="Tampered after signing")
    other_key = signed(request_data(court, suspect=by_phone), other["private_key"])  # court's id, other's key
    replay = dict(honest, data_categories=["ip_addresses"])
    replay = signed(replay, court["private_key"])
    instrument = request_data(court)["instrument"]
    expired = by(court, instrument=dict(instrument, issued_at=ago(90), expires_at=ago(1)))
    future = by(court, instrument=dict(instrument, issued_at=(NOW + timedelta(days=3)).isoformat()))
    from_revoked = by(revoked)
    beyond_scope = by(prosecutor, instrument=dict(instrument, type="court_order"))
    content_only = by(court, data_categories=["message_content"])
    content_too = by(court, suspect={"account_id": PEOPLE[2]["account_id"]},
                     data_categories=["ip_addresses", "message_content"])
    hostile = by(court, request_id=f"<b>REQ'--{SUFFIX}</b>",
                 instrument=dict(instrument, reference=HOSTILE, issued_by=HOSTILE),
                 suspect={"account_id": PEOPLE[2]["account_id"]},
                 offense={"category": "extremism_speech", "statute": HOSTILE, "description": HOSTILE})
    for data in (forged, other_key, replay, expired, future, from_revoked, beyond_scope, content_only, content_too,
                 hostile):
        await submit(bootstrap, data)

    expectations = [(forged, "invalid", "bad_signature"), (other_key, "invalid", "bad_signature"),
                    (expired, "rejected", "instrument_expired"), (future, "rejected", "issued_in_future"),
                    (from_revoked, "invalid", "revoked_authority"),
                    (beyond_scope, "rejected", "issuer_not_competent"),
                    (content_only, "rejected", "nothing_grantable"), (hostile, "pending_review", "speech_offense")]
    for data, status, code in expectations:
        [outcome] = await final_status(bootstrap, data["request_id"])
        assert (outcome["status"], code in codes(outcome)) == (status, True), (data["request_id"], outcome)
    statuses = await final_status(bootstrap, honest["request_id"], count=2)
    assert sorted(s["status"] for s in statuses) == ["disclosed", "invalid"]
    [conflict] = [s for s in statuses if s["status"] == "invalid"]
    assert codes(conflict) == {"conflicting_resubmission"}
    [named] = await final_status(bootstrap, honest_by_name["request_id"])
    assert named["status"] == "disclosed"
    # Asking for message content too: approved for IP addresses only, content refused by name.
    [narrowed] = await final_status(bootstrap, content_too["request_id"])
    assert narrowed["status"] == "disclosed"
    [approval] = await wait_for_events(bootstrap, "legal.requests.decided",
                                       lambda e: e["data"]["request_id"] == content_too["request_id"])
    assert approval["data"]["data_categories"] == ["ip_addresses"]

    api = services["legal-review"].url
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        hostile_case = (await http.get("/review/cases", params={"limit": 1000},
                                       headers={"Authorization": "Bearer adv-alice"})).json()
        [case] = [c for c in hostile_case if c["request_id"] == hostile["request_id"]]
        # Unauthenticated, unknown token, wrong role, the same reviewer twice.
        url = f"/review/cases/{case['case_id']}/decisions"
        approve = {"action": "approve", "reason": HOSTILE}
        assert (await http.get("/review/cases")).status_code == 401
        assert (await http.post(url, json=approve, headers={"Authorization": "Bearer forged"})).status_code == 401
        assert (await http.post(url, json=approve, headers={"Authorization": "Basic adv-alice"})).status_code == 401
        first = await http.post(url, json=approve, headers={"Authorization": "Bearer adv-alice"})
        assert first.status_code == 200, first.text
        twice = await http.post(url, json=approve, headers={"Authorization": "Bearer adv-alice"})
        assert twice.status_code == 403 and "same_reviewer" in twice.json()["detail"]
        wrong_role = await http.post(url, json=approve, headers={"Authorization": "Bearer adv-bob"})
        assert wrong_role.status_code == 403 and "supervisor_required" in wrong_role.json()["detail"]
        # SQL and markup: stored and served verbatim, as JSON data, and the tables are all there.
        detail = await http.get(f"/review/cases/{case['case_id']}", headers={"Authorization": "Bearer adv-carol"})
        assert detail.headers["content-type"] == "application/json"
        body = detail.json()
        assert body["request_id"] == hostile["request_id"]
        assert body["request"]["offense"]["description"] == HOSTILE
        assert body["request"]["instrument"]["reference"] == HOSTILE
        assert [r["reason"] for r in body["reviews"]] == [HOSTILE]
    if "moderation" in services:
        async with httpx.AsyncClient(base_url=services["moderation"].url, timeout=10) as http:
            assert (await http.get("/moderation/queue")).status_code == 401
            assert (await http.get("/moderation/queue", headers={"Authorization": "Bearer adv-viewer"})).status_code == 403
            assert (await http.get("/moderation/queue", headers={"Authorization": "Bearer adv-mod"})).status_code == 200

    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT request->'offense'->>'statute' FROM legal_review.cases"
                                     " WHERE request_id = $1", hostile["request_id"])
        assert stored == HOSTILE
        assert await conn.fetchval("SELECT count(*) FROM intake.submissions WHERE request_id = $1",
                                   hostile["request_id"]) == 1
        # An audit row edited in the database is caught by `warden audit verify`.
        verify = ["audit", "verify", "--service", "legal-review", "--database-url", database_url, "--bootstrap", bootstrap]
        intact = await asyncio.to_thread(CliRunner().invoke, cli, verify)
        assert intact.exit_code == 0, intact.output
        await conn.execute("UPDATE legal_review.audit_log SET actor = 'mallory'"
                           " WHERE seq = (SELECT min(seq) FROM legal_review.audit_log)")
    finally:
        await conn.close()
    tampered = await asyncio.to_thread(CliRunner().invoke, cli, verify)
    assert tampered.exit_code == 1 and "BROKEN at entry" in tampered.output

    for service in services.values():
        service.terminate()
    leaks = {name: [s for s in seeded_strings() if s in service.logs()] for name, service in services.items()}
    assert all(service.logs() for service in services.values()), "a service wrote no logs at all"
    assert leaks == {name: [] for name in services}, leaks
