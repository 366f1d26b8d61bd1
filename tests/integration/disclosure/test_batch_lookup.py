"""Disclosure reads a batch's suspects in the same few statements as one: same answers as one lookup each, never stale."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.contract.events import RequestApproved, SubscriberAccountUpdated
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import BatchItem, Context

from disclosure import handlers, store
from disclosure.package import Session
from disclosure.service import SERVICE

NOW = datetime.now(timezone.utc)
START, END = NOW - timedelta(days=30), NOW - timedelta(days=1)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def account_update(account_id: str, phone: str | None, at: datetime, username: str | None = None):
    return SubscriberAccountUpdated(account_id=account_id, username=username, phone_number=phone, country="FR",
                                    updated_at=at)


def suspect(case_id: str | None = None, account_id=None, phone=None, username=None, unusable=()) -> store.Suspect:
    return store.Suspect(case_id or str(uuid.uuid4()), account_id, phone, username, START, END, frozenset(unusable))


def approval(phone: str) -> RequestApproved:
    return RequestApproved(case_id=str(uuid.uuid4()), request_id="REQ-1", authority_id="court-1",
                           suspect={"phone_number": phone}, kind="disclosure",
                           data_categories=["ip_addresses", "phone_number"], period={"start": START, "end": END},
                           nondisclosure_until=None, policy_rules=[{"rule": "test", "outcome": "passed"}],
                           decided_by=["policy"])


def comparable(lookup: store.SuspectLookup) -> tuple:
    return (lookup.acted, lookup.candidates,
            sorted(lookup.phone_changes, key=lambda c: (c.account_id, c.changed_at)),
            sorted(lookup.sessions, key=lambda s: (s.account_id, s.observed_at, s.ip)))


async def migrated_pool(database_url: str) -> asyncpg.Pool:
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    return await create_pool(database_url, SERVICE.schema, 2)


async def seed(conn: asyncpg.Connection, tag: str) -> dict[str, str]:
    """alice: a phone and sessions; bob: changed phone inside the period; two accounts sharing one number."""
    ids = {name: f"{name}-{tag}" for name in ("alice", "bob", "carol", "dave")}
    await store.record_account_updates(conn, [
        (account_update(ids["alice"], "+33611000001", ago(90), "alice"), f"alice{tag}", "+33611000001"),
        (account_update(ids["bob"], "+33611000002", ago(90)), None, "+33611000002"),
        (account_update(ids["carol"], "+33611000009", ago(90)), None, "+33611000009"),
        (account_update(ids["dave"], "+33611000009", ago(80)), None, "+33611000009"),
    ])
    await store.record_account_updates(conn, [
        (account_update(ids["bob"], "+33611000003", ago(10)), None, "+33611000003")])
    await store.record_sessions(conn, [Session(ids["alice"], f"203.0.113.{i}", ago(2 + i)) for i in range(12)]
                                + [Session(ids["alice"], "203.0.113.200", ago(60)),  # before the period
                                   Session(ids["bob"], "198.51.100.7", ago(5))])
    return ids


async def test_the_batch_lookup_answers_as_one_lookup_per_suspect(database_url):
    pool = await migrated_pool(database_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            ids = await seed(conn, uuid.uuid4().hex[:6])
            acted_case = str(uuid.uuid4())
            await store.record_effects(conn, [store.CaseEffect(acted_case, "REQ-0", "court-1", "disclosure",
                                                               "no_data", "suspect_not_found", NOW)])
            suspects = [
                suspect(phone="+33611000001"),  # alice by phone
                suspect(username=f"alice{ids['alice'].split('-')[1]}"),  # alice by username
                suspect(account_id=ids["bob"], phone="+33611000002"),  # bob, by the number he left in the period
                suspect(phone="+33611000009"),  # two accounts: ambiguous
                suspect(phone="+33699999999"),  # nobody
                suspect(case_id=acted_case, phone="+33611000001"),  # already acted on
                suspect(account_id=ids["alice"]),  # by account id only
                suspect(phone="+33611000001", unusable={"username"}),  # a username that normalised to nothing
            ]
            batched = await store.lookup_suspects(conn, suspects)
            one_by_one = [await store.lookup_suspect(conn, s) for s in suspects]
            assert await store.lookup_suspects(conn, []) == []
    finally:
        await pool.close()

    assert [comparable(b) for b in batched] == [comparable(o) for o in one_by_one]
    by_phone, by_username, bob, ambiguous, nobody, acted, by_id, with_unusable = batched
    assert by_phone.candidates == {"phone_number": {ids["alice"]}}
    assert len([s for s in by_phone.sessions if s.account_id == ids["alice"]]) == 12  # not the one before the period
    assert by_username.candidates == {"username": {ids["alice"]}}
    assert bob.candidates == {"account_id": {ids["bob"]}, "phone_number": {ids["bob"]}}
    assert {c.value for c in bob.phone_changes} == {"+33611000002", "+33611000003"}
    assert ambiguous.candidates == {"phone_number": {ids["carol"], ids["dave"]}}
    assert nobody.candidates == {"phone_number": set()} and not nobody.sessions
    assert acted.acted and not by_phone.acted
    assert by_id.candidates == {"account_id": {ids["alice"]}}
    assert with_unusable.candidates == {"phone_number": {ids["alice"]}, "username": set()}  # given: counts


async def test_a_subscriber_event_later_in_the_batch_drops_the_prefetched_lookups(database_url):
    pool = await migrated_pool(database_url)
    tag = uuid.uuid4().hex[:6]
    newcomer, number = f"newcomer-{tag}", "+33622" + tag[:6].translate(str.maketrans("abcdef", "123456"))
    decision = approval(number)
    try:
        async with pool.acquire() as conn, conn.transaction():
            state = handlers.DisclosureState()
            batch = Context(SERVICE.name, conn, None, "legal.requests.decided", 0, 0, None, None, state=state)
            await handlers.look_up_suspects(batch, [decision])
            prefetched = state.lookups[decision.case_id]
            assert prefetched.candidates == {"phone_number": set()}  # nobody had the number yet

            feed = Context(SERVICE.name, conn, None, "platform.subscribers", 0, 1, None, None, state=state)
            update = BatchItem(account_update(newcomer, number, ago(40)), None, SERVICE.name)
            await handlers.record_subscriber_events(feed, [update])
            lookup = await handlers.lookup_suspect(batch, decision)

            again = Context(SERVICE.name, conn, None, "legal.requests.decided", 0, 2, None, None,
                            state=handlers.DisclosureState())
            await handlers.look_up_suspects(again, [decision])
            first_use = await handlers.lookup_suspect(again, decision)
            second_use = await handlers.lookup_suspect(again, decision)
    finally:
        await pool.close()
    assert lookup is not prefetched and lookup.candidates == {"phone_number": {newcomer}}
    # A prefetched lookup serves its case once: a second decision for the case reads what the first wrote.
    assert first_use.candidates == {"phone_number": {newcomer}} and second_use is not first_use


async def test_the_rest_of_the_transaction_keeps_the_configured_plan_cache_mode(database_url):
    pool = await migrated_pool(database_url)
    try:
        async with pool.acquire() as conn:
            database = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'ALTER DATABASE "{database}" SET plan_cache_mode = force_custom_plan')
    finally:
        await pool.close()
    pool = await create_pool(database_url, SERVICE.schema, 1)  # new sessions pick the database's setting up
    try:
        async with pool.acquire() as conn, conn.transaction():
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            await store.lookup_suspects(conn, [suspect(phone="+33611000001")])
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await pool.close()
