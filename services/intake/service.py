"""Intake, as the runtime runs it: what it consumes and the one handler for each."""
from pathlib import Path

from warden.authorities import AUTHORITY_MIGRATIONS, AUTHORITY_REGISTRY, require_registry_keys
from warden.contract.events import RequestReceived, RequestStatus
from warden.runtime.database import MigrationSet
from warden.runtime.service import Service, Subscription

from intake.handlers import receive_request, report_invalid_request

SERVICE = Service(
    name="intake",
    schema="intake",
    subscriptions=[
        Subscription("legal.requests.submitted", receive_request, on_rejected=report_invalid_request),
        AUTHORITY_REGISTRY,
    ],
    migrations=[AUTHORITY_MIGRATIONS, MigrationSet("intake", Path(__file__).parent / "migrations")],
    emits=(RequestReceived, RequestStatus),
    startup_checks=[require_registry_keys],
)
