"""`warden migrate [SERVICE]`: apply the services' database migrations, then exit.

A deployment runs it once per release (the Kubernetes Job warden-migrate) with
WARDEN_MIGRATE_ON_START=false on the services, which then wait for it instead of
migrating as they start. Each service's schema is migrated as the service's own role:
`<SERVICE>_DATABASE_URL` (as the roles job reads them) or, without it, DATABASE_URL.
"""
from __future__ import annotations

import asyncio
import os

import asyncpg
import click

from warden.runtime.database import migrate as apply_migrations
from warden.runtime.roles import url_variable
from warden.runtime.runner import SERVICE_MODULES, available_services, load_service
from warden.runtime.settings import Settings


def database_url(service: str, settings: Settings) -> str:
    """The service's own URL; DATABASE_URL when it is given or in the embedded default."""
    url = os.environ.get(url_variable(service))
    if url:
        return url
    if "database_url" in settings.model_fields_set or settings.embedded_defaults:
        return settings.database_url
    raise click.ClickException(f"{url_variable(service)} or DATABASE_URL is not set: `warden migrate` migrates "
                               f"{service}'s schema as the service's own role")


@click.command()
@click.argument("service", required=False, type=click.Choice(list(SERVICE_MODULES)))
def migrate(service: str | None) -> None:
    """Apply SERVICE's pending database migrations (every service's without SERVICE), then exit."""
    settings = Settings()
    names = [service] if service else available_services()
    if service and service not in available_services():
        raise click.ClickException(f"service {service!r} is not implemented in this build")
    targets = [(name, database_url(name, settings)) for name in names]  # every URL known before any change
    for name, url in targets:
        svc = load_service(name)
        try:
            applied = asyncio.run(apply_migrations(url, svc.schema, svc.migration_sets))
        except (OSError, asyncpg.PostgresError) as exc:
            raise click.ClickException(f"{name}: the database refused or is not reachable ({type(exc).__name__}: "
                                       f"{exc}); nothing after it was migrated") from None
        if applied:
            click.echo(f"{name}: applied {', '.join(applied)}")
        else:
            click.echo(f"{name}: up to date")
