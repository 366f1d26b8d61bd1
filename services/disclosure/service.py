"""Disclosure, as the runtime runs it: what it consumes, the one handler for each, its jobs.

Consumes platform.subscribers (the subscriber store), legal.requests.decided
(approvals act), legal.requests.withdrawn (no package for a withdrawn case) and
legal.authorities (keys to seal to). Emits legal.disclosures.issued,
legal.requests.status and legal.requests.progress, legal.notices.due, and
legal.audit.checkpoints (its audit chain's head: with each package, and
publish_checkpoints when the head moved).
"""
from pathlib import Path

from fastapi import FastAPI

from warden.audit import require_audit_key
from warden.authorities import AUTHORITY_MIGRATIONS, AUTHORITY_REGISTRY, require_registry_keys
from warden.contract.events import AuditCheckpoint, DisclosureIssued, NoticeDue, RequestProgress, RequestStatus
from warden.keys import public_key_of
from warden.runtime.database import MigrationSet
from warden.runtime.service import Service, ServiceContext, Subscription

from disclosure.audit import publish_checkpoints
from disclosure.handlers import (
    DisclosureState, act_on_decisions, look_up_suspects, record_subscriber_events, record_withdrawal,
)
from disclosure.jobs import emit_due_notices, purge_expired_data, refresh_metrics
from disclosure.keys import platform_private_key, require_platform_key
from disclosure.provenance import require_decision_keys
from disclosure.settings import DisclosureSettings


def routes(app: FastAPI, runtime: ServiceContext) -> None:
    @app.get("/platform-key", tags=["disclosure"])
    async def platform_key() -> dict[str, str]:
        """The public half of the key that signs disclosure packages (for `warden disclosure open`)."""
        async with runtime.pool.acquire() as conn:
            return {"public_key": public_key_of(await platform_private_key(conn, DisclosureSettings()))}


SERVICE = Service(
    name="disclosure",
    schema="disclosure",
    subscriptions=[
        Subscription("platform.subscribers", handle_batch=record_subscriber_events),
        Subscription("legal.requests.decided", handle_batch=act_on_decisions, prefetch=look_up_suspects),
        Subscription("legal.requests.withdrawn", record_withdrawal),
        AUTHORITY_REGISTRY,
    ],
    migrations=[AUTHORITY_MIGRATIONS, MigrationSet("disclosure", Path(__file__).parent / "migrations")],
    emits=(DisclosureIssued, NoticeDue, RequestStatus, RequestProgress, AuditCheckpoint),
    startup_checks=[require_registry_keys, require_decision_keys, require_audit_key, require_platform_key],
    batch_state=DisclosureState,
    routes=routes,
    background=[purge_expired_data, emit_due_notices, refresh_metrics, publish_checkpoints],
)
