"""Migrations run once each; one edited after it ran stops the service instead of being skipped."""
from __future__ import annotations

import uuid

import asyncpg
import pytest

from warden.runtime.database import MigrationChanged, MigrationSet, migrate


async def test_an_edited_migration_is_refused_and_named(database_url, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    schema, sets = f"mig_{uuid.uuid4().hex[:6]}", [MigrationSet("demo", folder)]
    assert await migrate(database_url, schema, sets) == ["demo/001_things.sql"]
    assert await migrate(database_url, schema, sets) == []  # unchanged: nothing to do, no complaint

    (folder / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY, name text);")
    with pytest.raises(MigrationChanged, match="demo/001_things.sql was edited after it ran"):
        await migrate(database_url, schema, sets)


async def test_a_migration_applied_before_checksums_were_kept_is_adopted(database_url, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    schema, sets = f"mig_{uuid.uuid4().hex[:6]}", [MigrationSet("demo", folder)]
    await migrate(database_url, schema, sets)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'UPDATE "{schema}".schema_migrations SET checksum = NULL')
        await migrate(database_url, schema, sets)
        recorded = await conn.fetchval(f'SELECT checksum FROM "{schema}".schema_migrations')
    finally:
        await conn.close()
    assert recorded is not None and len(recorded) == 64
    (folder / "001_things.sql").write_text("-- edited\nCREATE TABLE things (id int PRIMARY KEY);")
    with pytest.raises(MigrationChanged):
        await migrate(database_url, schema, sets)


def test_two_migrations_with_one_number_are_refused_before_anything_runs(tmp_path):
    (tmp_path / "003_audit.sql").write_text("SELECT 1;")
    (tmp_path / "003_other.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="two migrations numbered 003"):
        MigrationSet("demo", tmp_path).files()


@pytest.mark.parametrize("name", ["intake", "legal-review", "disclosure", "moderation"])
def test_every_service_numbers_its_migrations_once(name):
    from warden.runtime.database import RUNTIME_MIGRATIONS
    from warden.runtime.runner import load_service

    for migration_set in [RUNTIME_MIGRATIONS, *load_service(name).migrations]:
        migration_set.files()
