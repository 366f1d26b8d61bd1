"""Intake, as the runtime runs it: what it consumes, the one handler for each, and the authority API.

Consumes legal.requests.submitted (requests to verify), legal.authorities (the registry),
legal.requests.progress and legal.disclosures.issued (what each authority may read of its
own requests). Emits legal.requests.received, legal.requests.status and legal.requests.progress,
and publishes what authorities send over HTTP (/authority/v1, authority_api.py): requests on
legal.requests.submitted, answers to questions on legal.requests.amended, withdrawals on
legal.requests.withdrawn.
"""
from pathlib import Path

from warden.authorities import AUTHORITY_MIGRATIONS, AUTHORITY_REGISTRY, AuthorityState, require_registry_keys
from warden.contract.events import (
    LegalRequest, RequestAmended, RequestProgress, RequestReceived, RequestStatus, RequestWithdrawn,
)
from warden.runtime.database import MigrationSet
from warden.runtime.service import Service, Subscription

from intake.authentication import prune_signatures
from intake.authority_api import authority_routes
from intake.authority_view import record_disclosures, record_statuses
from intake.handlers import receive_requests, report_invalid_request

VIEW_READ_EVERY_S = 0.25

SERVICE = Service(
    name="intake",
    schema="intake",
    subscriptions=[
        Subscription("legal.requests.submitted", handle_batch=receive_requests, on_rejected=report_invalid_request),
        AUTHORITY_REGISTRY,
        # What each authority may read: a few batches a second (Subscription.read_every_s), while requests flow;
        # its handlers keep each status and package once by their own keys, so these take no inbox claim.
        Subscription("legal.requests.progress", handle_batch=record_statuses, read_every_s=VIEW_READ_EVERY_S,
                     deduplicates=True),
        Subscription("legal.disclosures.issued", handle_batch=record_disclosures, read_every_s=VIEW_READ_EVERY_S,
                     deduplicates=True),
    ],
    migrations=[AUTHORITY_MIGRATIONS, MigrationSet("intake", Path(__file__).parent / "migrations")],
    # LegalRequest, RequestAmended, RequestWithdrawn: as the authority signed them over the authority API.
    emits=(LegalRequest, RequestReceived, RequestStatus, RequestProgress, RequestAmended, RequestWithdrawn),
    startup_checks=[require_registry_keys],
    batch_state=AuthorityState,
    routes=authority_routes,
    background=[prune_signatures],
)
