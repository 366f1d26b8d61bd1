"""Each service as its own PostgreSQL role: it migrates and runs in its schema, and reads no other."""
from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime.database import RUNTIME_MIGRATIONS, migrate
from warden.runtime.roles import ServiceRole, provision, role_of
from warden.runtime.runner import load_service

from tests.support.stack import running, service_settings


def as_role(database_url: str, role: str, password: str) -> str:
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{role}:{password}@{host}", parts.path, parts.query, parts.fragment))


def migrations_of(service: str):
    return [RUNTIME_MIGRATIONS, *load_service(service).migrations]


async def refused(url: str, statement: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        return True
    finally:
        await conn.close()
    return False


def test_each_role_owns_its_schema_and_nothing_else(database_url):
    urls = {service: as_role(database_url, role_of(service), uuid.uuid4().hex) for service in ("intake", "disclosure")}
    env = {"DATABASE_URL": database_url, "INTAKE_DATABASE_URL": urls["intake"],
           "DISCLOSURE_DATABASE_URL": urls["disclosure"]}
    result = CliRunner().invoke(cli, ["database", "roles"], env=env)
    assert result.exit_code == 0, result.output
    assert "role warden_intake owns schema intake" in result.output
    assert all(urlsplit(u).password not in result.output for u in urls.values())

    async def check() -> None:
        for service, url in urls.items():
            schema = load_service(service).schema
            assert await migrate(url, schema, migrations_of(service))  # a first start creates its tables
            assert await migrate(url, schema, migrations_of(service)) == []  # a restart finds its schema
        intake = urls["intake"]
        assert await refused(intake, "SELECT count(*) FROM disclosure.outbox")
        assert await refused(intake, "SELECT count(*) FROM disclosure.platform_key")
        assert await refused(urls["disclosure"], "SELECT count(*) FROM intake.inbox")
        assert await refused(intake, "CREATE SCHEMA elsewhere")
        assert await refused(intake, "CREATE TABLE public.anything (x int)")
        assert await refused(intake, "ALTER ROLE warden_disclosure PASSWORD 'mine'")
        conn = await asyncpg.connect(database_url)
        try:
            owners = await conn.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'intake'")
            attributes = await conn.fetchrow("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                                             "WHERE rolname = 'warden_intake'")
        finally:
            await conn.close()
        assert [r["tableowner"] for r in owners] == ["warden_intake"]
        assert not any(attributes.values())

    asyncio.run(check())


def test_a_schema_migrated_by_an_administrator_is_handed_over(database_url):
    """An existing deployment: its tables (and legal review's view) were created by the admin."""
    url = as_role(database_url, role_of("legal-review"), "pw")

    async def check() -> None:
        await migrate(database_url, "legal_review", migrations_of("legal-review"))
        admin = await asyncpg.connect(database_url)
        try:
            await provision(admin, ServiceRole.from_url("legal-review", url))
            await provision(admin, ServiceRole.from_url("legal-review", url))  # again: nothing breaks
            owners = await admin.fetch("SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
                                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'legal_review'")
        finally:
            await admin.close()
        assert {r["owner"] for r in owners} == {"warden_legal_review"}
        assert await migrate(url, "legal_review", migrations_of("legal-review")) == []
        conn = await asyncpg.connect(url)
        try:
            await conn.fetchval("SELECT count(*) FROM legal_review.review_queue")
        finally:
            await conn.close()

    asyncio.run(check())


async def test_a_service_runs_as_its_own_role(bootstrap, database_url):
    url = as_role(database_url, role_of("intake"), "pw")
    admin = await asyncpg.connect(database_url)
    try:
        await provision(admin, ServiceRole.from_url("intake", url))
    finally:
        await admin.close()
    async with running("intake", service_settings(bootstrap, url)) as runtime:
        async with runtime.pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == "warden_intake"


def test_the_command_says_what_it_needs(monkeypatch):
    for name in ("DATABASE_URL", "INTAKE_DATABASE_URL", "LEGAL_REVIEW_DATABASE_URL", "DISCLOSURE_DATABASE_URL",
                 "MODERATION_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["database", "roles"])
    assert result.exit_code == 1 and "DATABASE_URL" in result.output
    result = CliRunner().invoke(cli, ["database", "roles"], env={"DATABASE_URL": "postgresql://admin@db/warden"})
    assert result.exit_code == 1 and "INTAKE_DATABASE_URL" in result.output
