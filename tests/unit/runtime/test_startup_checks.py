"""A service missing a trust anchor refuses to start and says which setting to give it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from warden.cli.main import cli

MISSING = [
    ("intake", {"WARDEN_REGISTRY_PUBLIC_KEYS": ""}, "WARDEN_REGISTRY_PUBLIC_KEYS is not set"),
    ("legal-review", {"WARDEN_REGISTRY_PUBLIC_KEYS": ""}, "WARDEN_REGISTRY_PUBLIC_KEYS is not set"),
    ("disclosure", {"WARDEN_REGISTRY_PUBLIC_KEYS": ""}, "WARDEN_REGISTRY_PUBLIC_KEYS is not set"),
    ("legal-review", {"WARDEN_DECISION_PRIVATE_KEY": ""}, "WARDEN_DECISION_PRIVATE_KEY"),
    ("disclosure", {"WARDEN_DECISION_PUBLIC_KEYS": ""}, "WARDEN_DECISION_PUBLIC_KEYS is not set"),
    ("legal-review", {"WARDEN_AUDIT_PRIVATE_KEY": ""}, "WARDEN_AUDIT_PRIVATE_KEY is not set"),
    ("disclosure", {"WARDEN_AUDIT_PRIVATE_KEY": ""}, "WARDEN_AUDIT_PRIVATE_KEY is not set"),
    ("disclosure", {"WARDEN_AUDIT_PUBLIC_KEYS": "A" * 43 + "="}, "is not among WARDEN_AUDIT_PUBLIC_KEYS"),
    ("intake", {"WARDEN_REGISTRY_PUBLIC_KEYS": "not-a-key"}, "key 1 of the list is not usable"),
    ("intake", {"WARDEN_REGISTRY_QUORUM": "2", "WARDEN_REGISTRY_PUBLIC_KEYS": "A" * 43 + "="},
     "only 1 registry keys are configured"),
]


@pytest.mark.parametrize("service, env, message", MISSING)
def test_a_service_without_its_keys_does_not_start(service, env, message, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["service", service])
    assert result.exit_code == 1
    assert f"{service} cannot start" in result.output and message in result.output


def test_a_start_up_failure_is_one_json_record_and_exit_1(monkeypatch):
    import json

    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:notaport/db")  # a malformed URL: not transient
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("WARDEN_HTTP_PORT", "0")
    result = CliRunner().invoke(cli, ["service", "intake"])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    [failure] = [r for r in records if r["message"] == "service stopped on an error"]
    assert failure["level"] == "CRITICAL" and failure["error_type"] and failure["service"] == "intake"
