"""Legal review, as the runtime runs it: what it consumes, the handler for each, its API and jobs.

Consumes  legal.requests.received  -> review_requests  (emits legal.requests.decided, legal.requests.status
                                                         and legal.requests.progress)
          legal.requests.amended   -> answer_clarification (the authority's signed answer, analysed anew)
          legal.requests.withdrawn -> withdraw_request  (the case closes as withdrawn)
          legal.authorities        -> the shared authority registry projection
          moderation.violations    -> record_violation (confirmed, and withdrawn when overturned)
          legal.disclosures.issued -> record_disclosures   (the transparency report's fulfilments)
          legal.requests.status    -> record_fulfilment   (disclosure's no_data and cancelled)
HTTP      /review/...              -> the human review API (api.py)
          /console/...             -> the reviewers' web console (console/routes.py)
Jobs      watch_deadlines          -> overdue metrics, unconfirmed emergencies
          publish_checkpoints      -> the audit chain's head on legal.audit.checkpoints, when it moved
"""
from pathlib import Path

from fastapi import FastAPI

from warden.audit import require_audit_key
from warden.authorities import AUTHORITY_MIGRATIONS, AUTHORITY_REGISTRY, require_registry_keys
from warden.console import require_console_secret
from warden.contract.events import AuditCheckpoint, RequestApproved, RequestProgress, RequestRejected, RequestStatus
from warden.runtime.database import MigrationSet
from warden.runtime.service import Service, ServiceContext, Subscription

from legal_review.api import require_review_tokens, review_routes
from legal_review.audit import publish_checkpoints
from legal_review.console.routes import console_routes
from legal_review.handlers import (
    ReviewState, answer_clarification, is_fulfilment, record_disclosures, record_fulfilment, record_violation, review_requests,
    withdraw_request,
)
from legal_review.jobs import watch_deadlines
from legal_review.keys import require_decision_key
from legal_review.policy import current_policy

current_policy()  # a broken policy file stops the service at startup, not request by request


def routes(app: FastAPI, runtime: ServiceContext) -> None:
    review_routes(app, runtime)
    console_routes(app, runtime)


OUTCOMES_READ_EVERY_S = 0.25

SERVICE = Service(
    name="legal-review",
    schema="legal_review",
    subscriptions=[
        Subscription("legal.requests.received", handle_batch=review_requests),
        Subscription("legal.requests.amended", answer_clarification),
        Subscription("legal.requests.withdrawn", withdraw_request),
        AUTHORITY_REGISTRY,
        Subscription("moderation.violations", record_violation),
        # Disclosure's outcomes, for the case view: read in a few batches a second (Subscription.read_every_s);
        # each case's outcome is kept once by its own key, so these take no inbox claim.
        Subscription("legal.disclosures.issued", handle_batch=record_disclosures, read_every_s=OUTCOMES_READ_EVERY_S,
                     deduplicates=True),
        Subscription("legal.requests.status", record_fulfilment, wants=is_fulfilment,
                     read_every_s=OUTCOMES_READ_EVERY_S, deduplicates=True),
    ],
    migrations=[AUTHORITY_MIGRATIONS, MigrationSet("legal_review", Path(__file__).parent / "migrations")],
    emits=(RequestApproved, RequestRejected, RequestStatus, RequestProgress, AuditCheckpoint),
    startup_checks=[require_registry_keys, require_decision_key, require_audit_key, require_review_tokens,
                    require_console_secret],
    batch_state=ReviewState,
    routes=routes,
    background=[watch_deadlines, publish_checkpoints],
)
