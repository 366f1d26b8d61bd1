"""Outside the embedded default a service refuses to start without a secret it needs, naming each one
missing at once; the embedded default (`warden up` with its own broker and database, the tests) may
leave out what a workstation can make up for itself."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime.runner import load_service
from warden.runtime.settings import ConfigurationError, Settings

CONNECTIONS = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "DATABASE_URL": "postgresql://svc@db:5432/warden"}
CONSOLE_SECRET = "c" * 48
PRODUCTION = {  # what each service is given in production, keys aside (tests/support/keys.py sets those)
    "intake": CONNECTIONS,
    "legal-review": {**CONNECTIONS, "WARDEN_CONSOLE_SECRET": CONSOLE_SECRET,
                     "WARDEN_REVIEW_TOKENS": json.dumps({"t" * 32: {"reviewer": "alice", "role": "reviewer"}})},
    "disclosure": {**CONNECTIONS, "WARDEN_DISCLOSURE_PRIVATE_KEY": "A" * 43 + "="},
    "moderation": {**CONNECTIONS, "WARDEN_CONSOLE_SECRET": CONSOLE_SECRET,
                   "WARDEN_MODERATION_TOKENS": json.dumps({"m" * 32: {"name": "maria", "roles": ["moderator"]}})},
}
ALL = {name for given in PRODUCTION.values() for name in given} | {"WARDEN_REVIEW_TOKENS_FILE",
                                                                   "WARDEN_EMBEDDED_DEFAULTS"}


@pytest.fixture(autouse=True)
def nothing_configured(monkeypatch):
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


def configure(monkeypatch, service: str, without: str = "") -> None:
    for name, value in PRODUCTION[service].items():
        if name != without:
            monkeypatch.setenv(name, value)


def checks_pass(service: str) -> None:
    service_ = load_service(service)
    if service == "moderation":  # its configuration is read when the service is built
        from moderation.service import build_service
        service_ = build_service()
    service_.check(Settings())


@pytest.mark.parametrize("service, missing", [(s, v) for s, given in PRODUCTION.items() for v in given])
def test_each_secret_a_service_needs_is_named_when_missing(service, missing, monkeypatch):
    configure(monkeypatch, service, without=missing)
    with pytest.raises(ConfigurationError, match=missing):
        checks_pass(service)


@pytest.mark.parametrize("service", PRODUCTION)
def test_with_what_production_gives_it_each_service_passes_its_checks(service, monkeypatch):
    configure(monkeypatch, service)
    checks_pass(service)


def test_every_missing_setting_is_named_at_once_and_no_value_is_echoed(monkeypatch):
    monkeypatch.setenv("WARDEN_CONSOLE_SECRET", "short-secret-value")
    result = CliRunner().invoke(cli, ["service", "legal-review"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "WARDEN_REVIEW_TOKENS",
                 "WARDEN_CONSOLE_SECRET is shorter than 32 characters"):
        assert name in result.output
    assert "short-secret-value" not in result.output


def test_review_tokens_that_do_not_parse_are_refused_naming_the_variable(monkeypatch):
    configure(monkeypatch, "legal-review")
    monkeypatch.setenv("WARDEN_REVIEW_TOKENS", '{"tok": {"reviewer": "alice", "role": "janitor"}}')
    with pytest.raises(ConfigurationError, match="WARDEN_REVIEW_TOKENS / WARDEN_REVIEW_TOKENS_FILE not usable"):
        checks_pass("legal-review")


def test_the_embedded_default_makes_up_the_console_secret_and_needs_no_tokens_or_addresses(monkeypatch):
    monkeypatch.setenv("WARDEN_EMBEDDED_DEFAULTS", "true")
    for service in ("intake", "legal-review", "moderation"):
        checks_pass(service)
