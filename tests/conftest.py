"""Session fixtures: one real Tansu broker and one real PostgreSQL server for the whole run.

Each test gets a fresh database (`database_url`) and its own consumer groups
(`tests.support.stack.service_settings`), so tests never see each other's state;
topics are shared, so tests match the events they look for by their own ids.
"""
from __future__ import annotations

import asyncio

import pytest

from warden.embedded import EmbeddedKafka, EmbeddedPostgres
from warden.runtime.kafka import create_topics

from tests.support import keys
from tests.support.database import new_database

keys.install()  # before any Settings() is read: every service of the run trusts the test keys


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    broker = EmbeddedKafka(log_file=tmp_path_factory.mktemp("kafka") / "tansu.log").start()
    asyncio.run(create_topics(broker.bootstrap))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def bootstrap(kafka_broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres) -> str:
    """A new, empty database on the session's server."""
    return new_database(postgres)
