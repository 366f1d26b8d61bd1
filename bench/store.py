"""Section: subscriber-store scaling, disclosure package build time at 1 M, 10 M (and, asked, 100 M) sessions.

The store is bulk-loaded straight into the disclosure schema (set-based INSERT
... SELECT generate_series, the server-side equivalent of COPY; the feed itself is
the ingest section's), into the weekly partitions the retention job would have
created for the year, then vacuumed and analysed as autovacuum would. Each
sample runs the service's real path, `disclosure.handlers.act_on_decisions`, for
an approval naming a random loaded account by username and phone number: resolve
the suspect, read its phone history and its sessions in the period, build, hash,
sign and seal the package, write the case, package and notice rows. The
transaction is rolled back, so every sample sees the same store.
"""
from __future__ import annotations

import os
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from warden.contract.envelope import Envelope
from warden.contract.events import LegalRequest, RequestApproved
from warden.identifiers import case_id_for, normalise_suspect
from warden.provenance import sign_decision
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from warden.runtime.service import Context
from warden.signing import generate_keypair, sign, signed_bytes

from bench.stack import Stack
from bench.stats import ratio, summary_ms

SESSIONS_PER_ACCOUNT = 100  # a year of sessions: about two a week
HORIZON_DAYS = 360
APPROVED = "warden.legal.request.approved.v1"


async def load(conn: asyncpg.Connection, first: int, last: int, chunk: int = 1_000_000) -> float:
    """Sessions number `first` .. `last - 1`: session g is the (g % N)th of account g / N (N per account)."""
    started = time.perf_counter()
    step = HORIZON_DAYS * 86400 / SESSIONS_PER_ACCOUNT
    for lo in range(first, last, chunk):
        hi = min(lo + chunk, last)
        await conn.execute(
            "INSERT INTO sessions (account_id, observed_at, ip)"
            " SELECT 'acct-' || (g / $3), now() - make_interval(secs => (g % $3) * $4 + (g / $3) % 86400),"
            "        '10.0.0.0'::inet + (g % 16000000)"
            " FROM generate_series($1::bigint, $2::bigint - 1) g", lo, hi, SESSIONS_PER_ACCOUNT, step,
            timeout=3600)
    await conn.execute("VACUUM (ANALYZE) sessions", timeout=3600)
    return time.perf_counter() - started


async def load_accounts(conn: asyncpg.Connection, first: int, last: int) -> None:
    ts = datetime.now(timezone.utc) - timedelta(days=HORIZON_DAYS + 30)
    await conn.execute(
        "INSERT INTO accounts (account_id, username, country, updated_at)"
        " SELECT 'acct-' || g, 'user_' || g, 'FR', $3 FROM generate_series($1::bigint, $2::bigint - 1) g",
        first, last, ts, timeout=3600)
    await conn.execute(
        "INSERT INTO phone_changes (account_id, changed_at, phone_number)"
        " SELECT 'acct-' || g, $3, '+336' || lpad(g::text, 8, '0') FROM generate_series($1::bigint, $2::bigint - 1) g",
        first, last, ts, timeout=3600)
    await conn.execute(
        "INSERT INTO username_changes (account_id, changed_at, username)"
        " SELECT 'acct-' || g, $3, 'user_' || g FROM generate_series($1::bigint, $2::bigint - 1) g",
        first, last, ts, timeout=3600)
    await conn.execute(  # the identifiers' directory, as the feed writes it with the change points
        "INSERT INTO identifier_holders (value, kind, account_id, changed_at)"
        " SELECT v.value, v.kind, 'acct-' || g, $3 FROM generate_series($1::bigint, $2::bigint - 1) g,"
        " LATERAL (VALUES ('+336' || lpad(g::text, 8, '0'), 'phone_number'), ('user_' || g, 'username')) v(value, kind)",
        first, last, ts, timeout=3600)
    await conn.execute("ANALYZE accounts; ANALYZE phone_changes; ANALYZE username_changes;"
                       " ANALYZE identifier_holders", timeout=3600)


def decision(authority: dict, account: int) -> Envelope:
    """An approval as legal review emits it: of a request the authority signed, pinned to its key, signed
    with the decision key the stack gave disclosure (WARDEN_DECISION_PRIVATE_KEY)."""
    now = datetime.now(timezone.utc)
    request = {
        "request_id": f"REQ-{uuid.uuid4().hex[:10]}", "authority_id": authority["authority_id"],
        "instrument": {"type": "court_order", "reference": "RG 26/0001", "issued_by": "Investigating judge",
                       "issued_at": (now - timedelta(days=2)).isoformat(),
                       "expires_at": (now + timedelta(days=60)).isoformat()},
        "suspect": {"username": f"user_{account}", "phone_number": f"+336{account:08d}"},
        "offense": {"category": "drug_trafficking", "statute": "Code penal 222-37", "description": "Bench"},
        "data_categories": ["ip_addresses", "phone_number"],
        "period": {"start": (now - timedelta(days=90)).isoformat(), "end": (now - timedelta(days=1)).isoformat()},
        "emergency": False, "nondisclosure_until": None}
    request["signature"] = sign(signed_bytes(request), authority["private_key"])
    parsed = LegalRequest.model_validate(request)
    approval = RequestApproved(
        case_id=case_id_for(parsed.authority_id, parsed.request_id), request_id=parsed.request_id,
        authority_id=parsed.authority_id, suspect=normalise_suspect(parsed.suspect), kind="disclosure",
        data_categories=parsed.data_categories, period=parsed.period, nondisclosure_until=None,
        policy_rules=[{"rule": "bench", "outcome": "passed"}], decided_by=["policy"], signed_request=request,
        authority_key=authority["public_key"], decided_at=now)
    data = sign_decision(approval.model_dump(mode="json"), os.environ["WARDEN_DECISION_PRIVATE_KEY"])
    return Envelope(id=str(uuid.uuid4()), source="/bench/legal-review", type=APPROVED, time=now, data=data)


async def measure(pool: asyncpg.Pool, authority: dict, accounts: int, samples: int) -> dict:
    from disclosure import store
    from disclosure.handlers import DisclosureState, act_on_decisions
    from warden.runtime.service import BatchItem

    rng = random.Random(11)
    builds, queries, ips = [], [], 0
    async with pool.acquire() as conn:
        for i in range(samples + 10):
            account = rng.randrange(accounts)
            envelope = decision(authority, account)
            d = RequestApproved.model_validate(envelope.data)
            account_id = f"acct-{account}"
            tx = conn.transaction()
            await tx.start()
            try:
                ctx = Context("disclosure", conn, envelope, "legal.requests.decided", 0, 0, None, None,
                              state=DisclosureState())
                item = BatchItem(d, envelope, "disclosure")
                started = time.perf_counter()
                await act_on_decisions(ctx, [item])
                built = time.perf_counter() - started
                started = time.perf_counter()
                await store.phone_changes_of(conn, account_id)
                found = await store.sessions_of(conn, account_id, d.period.start, d.period.end)
                queried = time.perf_counter() - started
            finally:
                await tx.rollback()
            if not any(r.topic == "legal.disclosures.issued" for r in item.outgoing):
                raise RuntimeError("the sample did not issue a package: the load is not what the bench expects")
            if i >= 10:  # the first ten warm the caches and prepared statements
                builds.append(built)
                queries.append(queried)
                ips += len(found)
    return {"build": summary_ms(builds), "query": summary_ms(queries),
            "sessions_per_package": round(ips / max(samples, 1), 1)}


async def run(stack: Stack, sizes: list[int], samples: int, label: str = "store") -> dict:
    """The store at each of `sizes` sessions in turn (each the one before plus what it lacks); ratios to the first."""
    from disclosure import store
    from disclosure.service import SERVICE

    database_url = await stack.new_database(label)
    await migrate(database_url, SERVICE.schema, [RUNTIME_MIGRATIONS, *SERVICE.migrations])
    pool = await create_pool(database_url, SERVICE.schema, 2)
    out: dict = {"sessions_per_account": SESSIONS_PER_ACCOUNT, "sizes": []}
    try:
        authority = dict(generate_keypair(), authority_id="bench-court")
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO authorities (authority_id, name, country, kind, public_key, status, updated_at)"
                " VALUES ($1, 'Bench court', 'FR', 'court', $2, 'active', now())",
                authority["authority_id"], authority["public_key"])
            await conn.execute("INSERT INTO authority_keys (authority_id, public_key, registered_at)"
                               " VALUES ($1, $2, now())", authority["authority_id"], authority["public_key"])
            # The weeks the retention job keeps: the loaded year falls into them, not the default partition.
            moment = datetime.now(timezone.utc)
            await store.create_session_partitions(conn, moment - timedelta(days=HORIZON_DAYS + 7),
                                                  moment + timedelta(weeks=4))
            before = 0
            for sessions in sizes:
                accounts = sessions // SESSIONS_PER_ACCOUNT
                await load_accounts(conn, before // SESSIONS_PER_ACCOUNT, accounts)
                seconds = await load(conn, before, sessions)
                size = await conn.fetchval(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'sessions'::regclass")
                stray = await conn.fetchval("SELECT count(*) FROM sessions_default")
                figures = await measure(pool, authority, accounts, samples)
                row = {"sessions": sessions, "accounts": accounts, "load_s": round(seconds, 1),
                       "load_rows_per_s": round((sessions - before) / seconds), "sessions_mb": round(size / 2**20),
                       "in_default_partition": stray, **figures}
                out["sizes"].append(row)
                print(f"  store {sessions:,}: {row}", flush=True)
                before = sessions
        first = out["sizes"][0]
        for row in out["sizes"][1:]:
            row["build_p50_ratio"] = ratio(row["build"]["p50_ms"], first["build"]["p50_ms"])
            row["build_p99_ratio"] = ratio(row["build"]["p99_ms"], first["build"]["p99_ms"])
    finally:
        await pool.close()
    await stack.drop_database(database_url)
    return out
