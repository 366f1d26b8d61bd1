"""`warden migrate` applies the migrations and exits; a service told not to migrate (the Kubernetes Job
does) waits for it, applying nothing, and becomes ready once they are in."""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid

import asyncpg
import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime.database import MigrationChanged, MigrationSet, migrate, pending_migrations
from warden.runtime.runner import Runtime, load_service

from tests.support.stack import service_settings


def test_warden_migrate_applies_each_migration_once_then_says_up_to_date(database_url, monkeypatch):
    monkeypatch.delenv("INTAKE_DATABASE_URL", raising=False)
    first = CliRunner().invoke(cli, ["migrate", "intake"], env={"DATABASE_URL": database_url})
    assert first.exit_code == 0, first.output
    assert first.output.startswith("intake: applied runtime/001_") and "intake/001_" in first.output
    again = CliRunner().invoke(cli, ["migrate", "intake"], env={"DATABASE_URL": database_url})
    assert again.exit_code == 0 and again.output == "intake: up to date\n"
    service = load_service("intake")
    assert asyncio.run(pending_migrations(database_url, service.schema, service.migration_sets)) == []


def test_every_service_is_migrated_with_its_own_url(database_url, postgres, monkeypatch):
    from tests.support.database import new_database

    other = new_database(postgres)
    env = {"DATABASE_URL": database_url, "MODERATION_DATABASE_URL": other}
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert {line.split(":")[0] for line in result.output.splitlines()} == {
        "intake", "legal-review", "disclosure", "moderation"}

    async def schemas(url: str) -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            return {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
        finally:
            await conn.close()

    assert {"intake", "legal_review", "disclosure"} <= asyncio.run(schemas(database_url))
    assert "moderation" not in asyncio.run(schemas(database_url))
    assert "moderation" in asyncio.run(schemas(other))


def test_without_a_database_url_it_says_which_to_set(monkeypatch):
    for name in ("DATABASE_URL", "INTAKE_DATABASE_URL", "WARDEN_EMBEDDED_DEFAULTS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["migrate", "intake"])
    assert result.exit_code == 1 and "INTAKE_DATABASE_URL or DATABASE_URL is not set" in result.output


async def test_pending_migrations_names_what_is_missing_and_refuses_an_edited_one(database_url, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    schema, sets = f"mig_{uuid.uuid4().hex[:6]}", [MigrationSet("demo", folder)]
    assert await pending_migrations(database_url, schema, sets) == ["demo/001_things.sql"]
    await migrate(database_url, schema, sets)
    (folder / "002_more.sql").write_text("CREATE TABLE more (id int PRIMARY KEY);")
    assert await pending_migrations(database_url, schema, sets) == ["demo/002_more.sql"]
    (folder / "001_things.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationChanged, match="demo/001_things.sql was edited"):
        await pending_migrations(database_url, schema, sets)


async def test_a_service_that_does_not_migrate_waits_for_warden_migrate(bootstrap, database_url, caplog):
    caplog.set_level(logging.WARNING, logger="warden.runtime.database")
    settings = service_settings(bootstrap, database_url, migrate_on_start=False)
    runtime = Runtime(load_service("intake"), settings)
    task = asyncio.create_task(runtime.run())
    try:
        deadline = time.monotonic() + 30
        while not any("waiting for `warden migrate`" in r.getMessage() for r in caplog.records):
            assert not task.done() and time.monotonic() < deadline, "the service did not wait for the migrations"
            await asyncio.sleep(0.05)
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT to_regclass('intake.schema_migrations')") is None, \
                "the service applied migrations itself"
        finally:
            await conn.close()
        assert not runtime.readiness()["database"]

        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "warden.cli.main", "migrate", "intake",
            env=dict(os.environ, DATABASE_URL=database_url), stdout=asyncio.subprocess.PIPE)
        out, _ = await command.communicate()
        assert command.returncode == 0 and out.decode().startswith("intake: applied")

        deadline = time.monotonic() + 30
        while not all(runtime.readiness().values()):
            assert not task.done() and time.monotonic() < deadline, f"not ready: {runtime.readiness()}"
            await asyncio.sleep(0.05)
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, timeout=60)
