"""Forgeries published straight onto Kafka, as anyone who can write a topic would (DESIGN.md, "Trust model").

Each is refused by the service that would perform the effect: it lands in the topic's DLQ
with its own reason, nothing changes (no case, no package, no hold, no notice, no registry
change), and the service goes on serving genuine events.
"""
from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.authorities import sign_record
from warden.cli.disclosure import PackageRefused, open_package
from warden.contract.events import RequestReceived
from warden.identifiers import case_id_for
from warden.keys import public_keys
from warden.provenance import sign_decision, verify_decision
from warden.signing import generate_keypair

from tests.support import keys
from tests.support.kafka import event_of, produce_event, wait_for_events, wait_for_records
from tests.support.requests import (
    new_authority, register_authority, registry_record, request_data, signed, signed_approval,
)
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import publish_received, received_for
from tests.support.waiting import until

DECIDED, APPROVED = "legal.requests.decided", "warden.legal.request.approved.v1"
REGISTRY, REGISTERED = "legal.authorities", "warden.legal.authority.registered.v1"
FORGER = keys.pair("forger")
NOW = datetime.now(timezone.utc)
PLATFORM = generate_keypair()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def dead_letter_reasons(bootstrap: str, topic: str, event_id: str, *, count: int = 1,
                              timeout: float = 30) -> dict[str, str]:
    """{service: dlq.reason} of the event's dead letters, once `count` services have dead-lettered it."""
    records = await wait_for_records(bootstrap, f"{topic}.dlq", lambda r: (event_of(r) or {}).get("id") == event_id,
                                     count=count, timeout=timeout)
    return {dict(r.headers)["dlq.service"].decode(): dict(r.headers)["dlq.reason"].decode() for r in records}


async def publish(bootstrap: str, topic: str, event_type: str, data: dict, source: str) -> str:
    return (await produce_event(bootstrap, topic, event_type, data, source=source))["id"]


async def fetch(database_url: str, query: str, *args):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def effects(database_url: str, *, case_id: str | None = None, account_id: str | None = None) -> dict:
    """What disclosure did for a case or to an account: cases, packages, holds, notices."""
    column, value = ("case_id", case_id) if case_id else ("account_id", account_id)
    found = {}
    for table in ("packages", "holds", "notices") + (("cases",) if case_id else ()):
        rows = await fetch(database_url, f"SELECT count(*) AS n FROM disclosure.{table} WHERE {column} = $1", value)
        found[table] = rows[0]["n"]
    return found


async def account(bootstrap: str, account_id: str, phone: str) -> None:
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": None, "phone_number": phone, "country": "FR",
        "updated_at": ago(100).isoformat()})
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1",
                        {"account_id": account_id, "ip": "198.51.100.9", "observed_at": ago(3).isoformat()})


async def known_accounts(database_url: str, *account_ids: str) -> None:
    async def probe():
        rows = await fetch(database_url, "SELECT count(*) AS n FROM disclosure.sessions WHERE account_id = ANY($1)",
                           list(account_ids))
        return rows[0]["n"] >= len(account_ids)
    await until(probe, 30)


async def key_known(database_url: str, schema: str, authority_id: str, public_key: str, *, revoked: bool = False):
    async def probe():
        try:
            rows = await fetch(database_url, f"SELECT revoked_at FROM {schema}.authority_keys"
                                             " WHERE authority_id = $1 AND public_key = $2", authority_id, public_key)
        except asyncpg.UndefinedTableError:
            return False
        return bool(rows) and (rows[0]["revoked_at"] is not None) == revoked
    await until(probe, 30)


def resigned(approval: dict, private_key: str, **changes) -> dict:
    """The approval with `changes`, signed again with `private_key`."""
    return sign_decision({**copy.deepcopy(approval), **changes}, private_key)


# --- disclosure: approvals ---------------------------------------------------------------

async def test_forged_approvals_disclose_nothing_and_a_real_one_acts_once(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", PLATFORM["private_key"])
    court = new_authority()
    await register_authority(bootstrap, court)
    suspect, victim = f"acct-{uuid.uuid4().hex[:10]}", f"victim-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, "+33611" + str(uuid.uuid4().int)[:6])
    await account(bootstrap, victim, "+33622" + str(uuid.uuid4().int)[:6])
    real = signed_approval(court, {"account_id": suspect}, period={"start": ago(30), "end": ago(1)},
                           data_categories=["ip_addresses"])
    on_victim = {"account_id": victim}
    # A request the court never signed, for the victim, signed by a forger who pins its own key.
    forged_request = signed(request_data(court, suspect=on_victim, data_categories=["ip_addresses"]),
                            FORGER["private_key"])
    forgeries = {
        "bad_decision_signature": {**copy.deepcopy(real), "suspect": on_victim},
        "unknown_decision_key": resigned(real, FORGER["private_key"], suspect=on_victim),
        "unsigned_decision": {k: v for k, v in real.items() if k not in ("decision_signature", "decision_key_id")},
        "decision_out_of_scope": resigned(real, keys.DECISION["private_key"],
                                          data_categories=["ip_addresses", "phone_number"]),
        "bad_request_signature": resigned(real, keys.DECISION["private_key"], suspect=on_victim, signed_request={
            **real["signed_request"], "suspect": on_victim}),
        "unregistered_authority_key": resigned(
            real, keys.DECISION["private_key"], suspect=on_victim, signed_request=forged_request,
            authority_key=FORGER["public_key"], request_id=forged_request["request_id"],
            case_id=case_id_for(court["authority_id"], forged_request["request_id"])),
    }
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await known_accounts(database_url, suspect, victim)
        sent = {reason: await publish(bootstrap, DECIDED, APPROVED, data, "/warden/legal-review")
                for reason, data in forgeries.items()}
        reasons = {expected: (await dead_letter_reasons(bootstrap, DECIDED, event_id))["disclosure"]
                   for expected, event_id in sent.items()}
        # The service goes on: the genuine approval discloses, once.
        await publish(bootstrap, DECIDED, APPROVED, real, "/warden/legal-review")
        [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued",
                                         lambda e: e["data"]["case_id"] == real["case_id"])
        replay = await publish(bootstrap, DECIDED, APPROVED, real, "/warden/legal-review")  # a new event id
        replayed = (await dead_letter_reasons(bootstrap, DECIDED, replay))["disclosure"]
        after = await effects(database_url, case_id=real["case_id"])
        on_the_victim = await effects(database_url, account_id=victim)
    assert reasons == {reason: reason for reason in forgeries}
    assert replayed == "replayed_decision"
    assert after == {"packages": 1, "holds": 0, "notices": 1, "cases": 1}
    assert on_the_victim == {"packages": 0, "holds": 0, "notices": 0}
    assert issued["data"]["account_id"] == suspect
    assert open_package(issued["data"], court["private_key"], PLATFORM["public_key"])["account_id"] == suspect


async def test_forged_preservation_places_no_hold(bootstrap, database_url):
    court = new_authority()
    await register_authority(bootstrap, court)
    victim = f"victim-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, victim, "+33633" + str(uuid.uuid4().int)[:6])
    hold = signed_approval(court, {"account_id": victim}, kind="preservation", hold_until=NOW + timedelta(days=90),
                           period={"start": ago(30), "end": ago(1)})
    forged = resigned(hold, FORGER["private_key"])
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await known_accounts(database_url, victim)
        event_id = await publish(bootstrap, DECIDED, APPROVED, forged, "/warden/legal-review")
        reasons = await dead_letter_reasons(bootstrap, DECIDED, event_id)
    assert reasons == {"disclosure": "unknown_decision_key"}
    assert await effects(database_url, account_id=victim) == {"packages": 0, "holds": 0, "notices": 0}


async def test_a_revoked_authority_gets_nothing_and_is_told_so(bootstrap, database_url):
    court = new_authority()
    await register_authority(bootstrap, court)
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, "+33644" + str(uuid.uuid4().int)[:6])
    approval = signed_approval(court, {"account_id": suspect}, period={"start": ago(30), "end": ago(1)})
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await known_accounts(database_url, suspect)
        await register_authority(bootstrap, court, status="revoked")
        await key_known(database_url, "disclosure", court["authority_id"], court["public_key"], revoked=True)
        await publish(bootstrap, DECIDED, APPROVED, approval, "/warden/legal-review")
        [status] = await wait_for_events(bootstrap, "legal.requests.status",
                                         lambda e: e["data"].get("case_id") == approval["case_id"])
        done = await effects(database_url, case_id=approval["case_id"])
        conn = await asyncpg.connect(database_url)
        try:
            audited = await conn.fetch("SELECT action, detail->>'reason' AS reason FROM disclosure.audit_log"
                                       " WHERE case_id = $1", approval["case_id"])
        finally:
            await conn.close()
    assert [(r["action"], r["reason"]) for r in audited] == [("case.cancelled", "authority_revoked")]
    assert status["data"]["status"] == "cancelled"
    assert [r["code"] for r in status["data"]["reasons"]] == ["authority_revoked"]
    assert done == {"packages": 0, "holds": 0, "notices": 0, "cases": 1}


async def test_the_package_is_sealed_to_the_key_pinned_at_submission(bootstrap, database_url, monkeypatch):
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", PLATFORM["private_key"])
    court = new_authority()
    await register_authority(bootstrap, court)
    suspect = f"acct-{uuid.uuid4().hex[:10]}"
    await account(bootstrap, suspect, "+33655" + str(uuid.uuid4().int)[:6])
    approval = signed_approval(court, {"account_id": suspect}, period={"start": ago(30), "end": ago(1)})
    new_key = generate_keypair()
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await known_accounts(database_url, suspect)
        # The operators re-key the court after the request was verified: the case keeps its key.
        await register_authority(bootstrap, {**court, "public_key": new_key["public_key"]})
        await key_known(database_url, "disclosure", court["authority_id"], new_key["public_key"])
        await publish(bootstrap, DECIDED, APPROVED, approval, "/warden/legal-review")
        [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued",
                                         lambda e: e["data"]["case_id"] == approval["case_id"])
    assert open_package(issued["data"], court["private_key"], PLATFORM["public_key"])["account_id"] == suspect
    try:
        open_package(issued["data"], new_key["private_key"], PLATFORM["public_key"])
        opened_with_new_key = True
    except PackageRefused:
        opened_with_new_key = False
    assert not opened_with_new_key


# --- legal review: received requests -------------------------------------------------------

async def test_forged_received_requests_open_no_case_and_real_ones_are_decided_signed(bootstrap, database_url):
    court = new_authority("court", "FR")
    await register_authority(bootstrap, court)
    genuine = received_for(signed(request_data(court, suspect={"account_id": "acct-genuine"}), court["private_key"]))

    def variant(**changes) -> dict:
        submitted = signed(request_data(court, suspect={"account_id": f"acct-{uuid.uuid4().hex[:8]}"}),
                           court["private_key"])
        return {**received_for(submitted), **changes}

    made_up = received_for({**variant()["submitted"], "signature": "A" * 86 + "=="})
    by_forger = received_for(signed(request_data(court), FORGER["private_key"]))
    other_suspect = variant()
    other_suspect["request"] = {**other_suspect["request"], "suspect": {"account_id": "acct-chosen"}}
    forgeries = {
        "bad_signature": [made_up, by_forger],
        "request_mismatch": [other_suspect, variant(case_id=str(uuid.uuid4()))],
        "unsigned_request": [{k: v for k, v in variant().items() if k != "submitted"}],
    }
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await key_known(database_url, "legal_review", court["authority_id"], court["public_key"])
        sent = [(reason, event, await publish(bootstrap, "legal.requests.received",
                                              "warden.legal.request.received.v1", event, "/warden/intake"))
                for reason, events in forgeries.items() for event in events]
        reasons = [(expected, (await dead_letter_reasons(bootstrap, "legal.requests.received", event_id))
                    ["legal-review"]) for expected, _, event_id in sent]
        await publish_received(bootstrap, genuine)
        [decision] = await wait_for_events(bootstrap, DECIDED, lambda e: e["data"]["case_id"] == genuine["case_id"])
        cases = await fetch(database_url, "SELECT case_id::text AS case_id, authority_key FROM legal_review.cases"
                                          " WHERE case_id::text = ANY($1)",
                            [e["case_id"] for _, e, _ in sent] + [genuine["case_id"]])
    assert [expected for expected, _ in reasons] == [reason for _, reason in reasons]
    assert [c["case_id"] for c in cases] == [genuine["case_id"]]
    assert cases[0]["authority_key"] == court["public_key"]
    data = decision["data"]
    assert decision["type"] == APPROVED
    assert verify_decision(data, public_keys(keys.DECISION["public_key"]))
    assert data["signed_request"] == genuine["submitted"] and data["authority_key"] == court["public_key"]
    RequestReceived.model_validate(genuine)  # what the test published is a well-formed event


# --- the registry, in every service that projects it ---------------------------------------------

REGISTRY_READERS = {"intake": "intake", "legal-review": "legal_review", "disclosure": "disclosure"}


async def registry_row(database_url: str, schema: str, authority_id: str):
    rows = await fetch(database_url, f"SELECT public_key, status FROM {schema}.authorities WHERE authority_id = $1",
                       authority_id)
    return tuple(rows[0]) if rows else None


async def test_registry_forgeries_change_no_projection_and_revocation_sticks(bootstrap, database_url):
    court = new_authority()
    real = await register_authority(bootstrap, court)
    newcomer = new_authority()
    unsigned = {k: v for k, v in registry_record(newcomer).items() if k != "signatures"}
    foreign = registry_record({**court, "public_key": FORGER["public_key"]}, FORGER["private_key"])
    tampered = {**registry_record({**court, "public_key": FORGER["public_key"]}),
                "signatures": real["signatures"]}  # the operator's signature of another record
    future = registry_record({**court, "public_key": FORGER["public_key"]})
    future = sign_record({**future, "updated_at": "2999-01-01T00:00:00+00:00"}, keys.REGISTRY["private_key"])
    forgeries = {"registry_unsigned": unsigned, "registry_unknown_signer": foreign,
                 "registry_bad_signature": tampered, "registry_future_dated": future}
    settings = {name: service_settings(bootstrap, database_url) for name in REGISTRY_READERS}
    async with running("intake", settings["intake"]), running("legal-review", settings["legal-review"]), \
            running("disclosure", settings["disclosure"]):
        for schema in REGISTRY_READERS.values():
            await key_known(database_url, schema, court["authority_id"], court["public_key"])
        sent = {reason: await publish(bootstrap, REGISTRY, REGISTERED, data, "/warden/cli")
                for reason, data in forgeries.items()}
        reasons = {reason: await dead_letter_reasons(bootstrap, REGISTRY, event_id, count=3)
                   for reason, event_id in sent.items()}
        after_forgeries = {s: (await registry_row(database_url, s, court["authority_id"]),
                               await registry_row(database_url, s, newcomer["authority_id"]))
                           for s in REGISTRY_READERS.values()}
        # The operator's revocation is heard by every service, and the key cannot come back.
        await register_authority(bootstrap, court, status="revoked")
        for schema in REGISTRY_READERS.values():
            await key_known(database_url, schema, court["authority_id"], court["public_key"], revoked=True)
        comeback = await publish(bootstrap, REGISTRY, REGISTERED, registry_record(court), "/warden/cli")
        comeback_reasons = await dead_letter_reasons(bootstrap, REGISTRY, comeback, count=3)
        finally_ = {s: await registry_row(database_url, s, court["authority_id"]) for s in REGISTRY_READERS.values()}
    assert reasons == {reason: {service: reason for service in REGISTRY_READERS} for reason in forgeries}
    assert after_forgeries == {s: ((court["public_key"], "active"), None) for s in REGISTRY_READERS.values()}
    assert comeback_reasons == {service: "registry_revoked_key" for service in REGISTRY_READERS}
    assert finally_ == {s: (court["public_key"], "revoked") for s in REGISTRY_READERS.values()}


async def test_a_quorum_of_two_operators_is_needed_for_a_new_key(bootstrap, database_url):
    court = new_authority()
    one, two = keys.REGISTRY["private_key"], keys.SECOND_OPERATOR["private_key"]
    settings = service_settings(bootstrap, database_url, registry_quorum=2)
    async with running("intake", settings):
        alone = await publish(bootstrap, REGISTRY, REGISTERED, registry_record(court, one), "/warden/cli")
        alone_reason = await dead_letter_reasons(bootstrap, REGISTRY, alone)
        twice_by_one = await publish(bootstrap, REGISTRY, REGISTERED, registry_record(court, one, one), "/warden/cli")
        twice_reason = await dead_letter_reasons(bootstrap, REGISTRY, twice_by_one)
        assert await registry_row(database_url, "intake", court["authority_id"]) is None
        await register_authority(bootstrap, court, one, two)
        await key_known(database_url, "intake", court["authority_id"], court["public_key"])
        # Revoking is never held back by the quorum: one operator suffices.
        await register_authority(bootstrap, court, one, status="revoked")
        await key_known(database_url, "intake", court["authority_id"], court["public_key"], revoked=True)
    assert alone_reason == {"intake": "registry_quorum"}
    assert twice_reason == {"intake": "registry_quorum"}


async def test_a_new_consumer_group_knows_the_registry_before_it_checks_anything(bootstrap, database_url):
    """The registry is read to its end before the group consumes: an approval published before the
    authority's record, both before disclosure starts, is still traced to a registered key and acted on."""
    court = new_authority()
    approval = signed_approval(court, {"account_id": f"acct-{uuid.uuid4().hex[:10]}"},
                               period={"start": ago(30), "end": ago(1)})
    await publish(bootstrap, DECIDED, APPROVED, approval, "/warden/legal-review")
    await register_authority(bootstrap, court)
    await asyncio.sleep(0.5)  # both on the broker before the service exists
    async with running("disclosure", service_settings(bootstrap, database_url)):
        [status] = await wait_for_events(bootstrap, "legal.requests.status",
                                         lambda e: e["data"].get("case_id") == approval["case_id"], timeout=30)
    assert status["data"]["status"] == "no_data"  # acted on (the suspect has no data), not dead-lettered
