"""Disclosure's signing key is configured, except on the embedded default: otherwise it refuses to start."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime.runner import Runtime, load_service
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


async def test_before_connecting_to_anything():
    with pytest.raises(ConfigurationError, match="warden keygen"):
        Runtime(load_service("disclosure"), Settings(kafka_bootstrap_servers="nowhere:1"))


async def test_a_configured_key_or_the_embedded_default_lets_it_start(monkeypatch):
    Runtime(load_service("disclosure"), Settings(embedded_defaults=True))
    monkeypatch.setenv("WARDEN_EMBEDDED_DEFAULTS", "true")
    Runtime(load_service("disclosure"), Settings())
    monkeypatch.delenv("WARDEN_EMBEDDED_DEFAULTS")
    monkeypatch.setenv("WARDEN_DISCLOSURE_PRIVATE_KEY", generate_keypair()["private_key"])
    Runtime(load_service("disclosure"), Settings())


async def test_other_services_need_no_key():
    Runtime(load_service("intake"), Settings())
