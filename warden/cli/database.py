"""`warden database roles`: each service's own PostgreSQL role, owning its schema only."""
from __future__ import annotations

import asyncio
import os

import asyncpg
import click

from warden.runtime.roles import SERVICE_SCHEMAS, ServiceRole, provision, url_variable


@click.group()
def database() -> None:
    """PostgreSQL administration for production deployments."""


@database.command("roles")
def roles() -> None:
    """Create or update each service's role from <SERVICE>_DATABASE_URL, as DATABASE_URL's administrator.

    The role and password are those of the service's URL; the role owns the service's schema
    and nothing else (warden/runtime/roles.py). Services without a URL are left alone.
    """
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise click.ClickException("DATABASE_URL (an administrator of the database) is not set")
    try:
        wanted = [ServiceRole.from_url(service, os.environ[url_variable(service)])
                  for service in SERVICE_SCHEMAS if os.environ.get(url_variable(service))]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not wanted:
        names = ", ".join(url_variable(s) for s in SERVICE_SCHEMAS)
        raise click.ClickException(f"no service database URL: set one or more of {names}")
    asyncio.run(_provision_all(admin_url, wanted))
    for role in wanted:
        click.echo(f"role {role.role} owns schema {role.schema}")


async def _provision_all(admin_url: str, wanted: list[ServiceRole]) -> None:
    admin = await asyncpg.connect(admin_url, timeout=10)
    try:
        for role in wanted:
            await provision(admin, role)
    finally:
        await admin.close()
