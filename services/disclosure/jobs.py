"""Background jobs: retention, due user notices, metrics, in rounds (warden.runtime.jobs). Each survives
restarts: its whole state is in the database, and each step is one short transaction."""
from __future__ import annotations

import logging
from datetime import timedelta

from warden.contract.envelope import now
from warden.contract.events import NoticeDue
from warden.keys import public_key_of
from warden.runtime.jobs import every
from warden.runtime.service import ServiceContext

from disclosure import audit, metrics, store
from disclosure.keys import platform_private_key
from disclosure.settings import DisclosureSettings
from disclosure.subscribers import retention_cutoff

log = logging.getLogger(__name__)


async def purge_expired_data(runtime: ServiceContext) -> None:
    """Keep the weekly session partitions ahead of the clock, and retention: weeks past it are
    dropped (held accounts' sessions copied aside first), superseded identifiers deleted,
    sessions kept aside deleted once no hold on their account is in force."""
    settings = DisclosureSettings()

    async def step() -> None:
        moment = now()
        cutoff = retention_cutoff(moment, settings.retention_days)
        async with runtime.pool.acquire() as conn:
            ahead = moment + timedelta(weeks=settings.partitions_ahead_weeks)
            await store.create_session_partitions(conn, cutoff, ahead)
            weeks = await store.session_partitions(conn)
        sessions = kept = 0
        for name, _, end in weeks:
            if end > cutoff or runtime.stopping.is_set():
                break
            async with runtime.pool.acquire() as conn, conn.transaction():
                await audit.lock_chain(conn)
                dropped, held = await store.drop_expired_partition(conn, name, moment)
                if dropped - held:
                    await audit.retention_purged(conn, moment, cutoff, dropped - held, 0)
            sessions, kept = sessions + dropped - held, kept + held
        async with runtime.pool.acquire() as conn, conn.transaction():
            await audit.lock_chain(conn)
            stray = await store.purge_default_sessions(conn, cutoff, moment)
            released = await store.purge_held_sessions(conn, cutoff, moment)
            identifiers = await store.purge_superseded_identifiers(conn, cutoff, moment)
            if stray or released or identifiers:
                await audit.retention_purged(conn, moment, cutoff, stray + released, identifiers)
        sessions += stray + released
        metrics.SESSIONS_PURGED.set(sessions)
        if sessions or identifiers or kept:
            log.info("retention purge", extra={"sessions": sessions, "kept_for_holds": kept,
                                               "identifier_changes": identifiers, "cutoff": cutoff.isoformat()})

    await every(runtime.stopping, settings.retention_interval_s, step, "retention")


async def emit_due_notices(runtime: ServiceContext) -> None:
    """Notices whose nondisclosure period has passed, through the outbox, once each."""
    settings = DisclosureSettings()
    async with runtime.pool.acquire() as conn:
        # Fail fast on a bad configured key: a crash with a clear log beats dead-lettered approvals.
        key = await platform_private_key(conn, settings)
    try:
        log.info("platform disclosure key", extra={"public_key": public_key_of(key)})
    except ValueError as exc:
        raise RuntimeError(f"WARDEN_DISCLOSURE_PRIVATE_KEY is not usable: {exc}") from None

    async def step() -> None:
        async with runtime.unit_of_work() as uow:
            await audit.lock_chain(uow.conn)
            due = await store.take_due_notices(uow.conn, now())
            await audit.notices_emitted(uow.conn, due, now())
            for r in due:
                uow.emit(NoticeDue(case_id=r["case_id"], account_id=r["account_id"], due_at=r["due_at"]))
        if due:
            log.info("user notices due", extra={"notices": len(due)})

    await every(runtime.stopping, settings.notice_interval_s, step, "notices")


async def refresh_metrics(runtime: ServiceContext) -> None:
    settings = DisclosureSettings()

    async def step() -> None:
        async with runtime.pool.acquire() as conn:
            row = await store.counts(conn, now())
        metrics.PACKAGES_ISSUED.set(row["packages"])
        metrics.NO_DATA.set(row["no_data"])
        metrics.HOLDS_ACTIVE.set(row["holds_active"])
        metrics.NOTICES_PENDING.set(row["notices_pending"])

    await every(runtime.stopping, settings.metrics_interval_s, step, "metrics")
