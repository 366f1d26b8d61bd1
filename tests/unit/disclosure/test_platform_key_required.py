"""Disclosure's signing key is configured, except on the embedded default: otherwise it refuses to start."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime.runner import load_service
from warden.runtime.settings import ConfigurationError, Settings
from warden.signing import generate_keypair


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("WARDEN_DISCLOSURE_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("WARDEN_EMBEDDED_DEFAULTS", raising=False)


def test_without_a_key_outside_the_embedded_default_disclosure_refuses_to_start_saying_why():
    result = CliRunner().invoke(cli, ["service", "disclosure"])
    assert result.exit_code == 1
    assert "WARDEN_DISCLOSURE_PRIVATE_KEY is not set" in result.output
    assert "Traceback" not in result.output


def run_checks(service: str, settings: Settings) -> None:
    for check in load_service(service).startup_checks:
        check(settings)


def test_the_check_needs_no_connection():
    with pytest.raises(ConfigurationError, match="warden keygen"):
        run_checks("disclosure", Settings(kafka_bootstrap_servers="nowhere:1", database_url="postgresql://nowhere/x"))


def test_a_configured_key_or_the_embedded_default_lets_it_start(monkeypatch):
    run_checks("disclosure", Settings(embedded_defaults=True))
    monkeypatch.setenv("WARDEN_EMBEDDED_DEFAULTS", "true")
    run_checks("disclosure", Settings())
    monkeypatch.delenv("WARDEN_EMBEDDED_DEFAULTS")
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", generate_keypair()["private_key"])
    run_checks("disclosure", Settings())


def test_other_services_need_no_platform_key():
    run_checks("intake", Settings())
