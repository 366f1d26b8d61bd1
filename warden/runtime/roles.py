"""Least privilege in PostgreSQL: each service logs in as its own role, which owns its schema only.

`warden database roles` runs this as an administrator (the database's owner or a superuser),
for every service whose `<SERVICE>_DATABASE_URL` it is given (INTAKE_DATABASE_URL,
LEGAL_REVIEW_DATABASE_URL, ...): the role and password are those of that URL. Each role:
- logs in, with no other attribute (no superuser, createdb, createrole, replication);
- may connect to the database, and create nothing in it: no schema, nothing in `public`
  (PUBLIC loses every right on both);
- owns its service's schema and everything in it, so its migrations run as itself;
- has no right on any other schema, so it cannot read another service's data.
The embedded default (`warden up`, the tests) keeps one superuser for everything.
Running it again changes passwords and hands over what another role created in the schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg

# Each service's schema (its `Service.schema`), kept here so that provisioning needs no service code.
SERVICE_SCHEMAS = {"intake": "intake", "legal-review": "legal_review", "disclosure": "disclosure",
                   "moderation": "moderation"}


def url_variable(service: str) -> str:
    return service.upper().replace("-", "_") + "_DATABASE_URL"


def role_of(service: str) -> str:
    """The role name the deployment files use for a service (warden_intake, warden_legal_review, ...)."""
    return "warden_" + SERVICE_SCHEMAS[service]


@dataclass(frozen=True)
class ServiceRole:
    service: str
    role: str
    password: str | None

    @property
    def schema(self) -> str:
        return SERVICE_SCHEMAS[self.service]

    @classmethod
    def from_url(cls, service: str, url: str) -> ServiceRole:
        parts = urlsplit(url)
        if not parts.username:
            raise ValueError(f"{url_variable(service)} names no user")
        return cls(service, unquote(parts.username), unquote(parts.password) if parts.password else None)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def provision(admin: asyncpg.Connection, role: ServiceRole) -> None:
    """Create or update the role and give it its schema, and nothing else (see the module's doc)."""
    r, schema = _ident(role.role), _ident(role.schema)
    database = _ident(await admin.fetchval("SELECT current_database()"))
    async with admin.transaction():
        verb = "ALTER" if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role.role) else "CREATE"
        attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        if role.password is not None:
            # a utility statement takes no bind parameter: quote the literal on the server
            attributes += " PASSWORD " + await admin.fetchval("SELECT quote_literal($1)", role.password)
        await admin.execute(f"{verb} ROLE {r} WITH {attributes}")
        await admin.execute(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
        await admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {r}")
        await admin.execute(f"REVOKE CREATE ON DATABASE {database} FROM {r}")
        await admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await admin.execute(f"REVOKE ALL ON SCHEMA public FROM {r}")
        if await admin.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", role.schema):
            await admin.execute(f"ALTER SCHEMA {schema} OWNER TO {r}")
        else:
            await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {r}")
        await _hand_over_contents(admin, role)


async def _hand_over_contents(admin: asyncpg.Connection, role: ServiceRole) -> None:
    """Tables, views and sequences another role created in the schema (migrations run as an admin)."""
    rows = await admin.fetch(
        """SELECT c.relname, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             AND pg_get_userbyid(c.relowner) <> $2
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                             AND d.classid = 'pg_class'::regclass)""",
        role.schema, role.role)
    kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW",
             "S": "SEQUENCE"}
    for row in rows:
        await admin.execute(f"ALTER {kinds[row['relkind']]} {_ident(role.schema)}.{_ident(row['relname'])} "
                            f"OWNER TO {_ident(role.role)}")
