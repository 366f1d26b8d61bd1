"""Kafka security settings: read from the environment, refused when they cannot work, and
carried by every client `warden.runtime.kafka` builds."""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from warden.cli.main import cli
from warden.runtime import kafka
from warden.runtime.settings import ConfigurationError, Settings, read_kafka_security

ROOT = Path(__file__).resolve().parents[3]
SECRET = "hunter2-not-in-any-log"
NAMES = ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD",
         "SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE", "SSL_PASSWORD")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(f"KAFKA_{name}", raising=False)
        monkeypatch.delenv(f"WARDEN_KAFKA_{name}", raising=False)


def set_env(monkeypatch, prefix: str = "KAFKA_", **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"{prefix}{name.upper()}", value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, and a client certificate it signed whose key is encrypted with SECRET."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make test certificates")
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=warden-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=intake", "-passout", f"pass:{SECRET}")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.pem", "-days", "2")
    return {"ca": d / "ca.pem", "cert": d / "client.pem", "key": d / "client.key"}


def test_without_settings_clients_speak_plaintext(monkeypatch):
    assert kafka.connection("k:9092") == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("prefix", ["KAFKA_", "WARDEN_KAFKA_"])
async def test_every_client_carries_the_sasl_settings(monkeypatch, prefix):
    set_env(monkeypatch, prefix, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
            sasl_username="intake", sasl_password=SECRET)
    clients = [kafka.producer("k:9092").client, kafka.consumer("k:9092", "warden-intake")._client,
               kafka.admin("k:9092")._client]
    for client in clients:
        assert client._bootstrap_servers == "k:9092"
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "intake"
        assert client._sasl_plain_password == SECRET
        assert client._ssl_context is None


async def test_the_service_runtime_builds_its_clients_from_its_settings(monkeypatch):
    from warden.runtime.runner import Runtime
    from warden.runtime.service import Service, Subscription

    async def handler(ctx, items) -> None:
        pass

    set_env(monkeypatch, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
            sasl_username="disclosure", sasl_password=SECRET)
    with_a_view = [Subscription("legal.requests.decided", handle_batch=handler),
                   Subscription("legal.requests.progress", handle_batch=handler, read_every_s=0.25)]
    runtime = Runtime(Service("disclosure", "disclosure", with_a_view, []), Settings())
    for client in (runtime.producer.client, runtime.consumer._client, runtime.views_consumer._client):
        assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username) == \
            ("SASL_PLAINTEXT", "PLAIN", "disclosure")


async def test_tls_clients_get_a_context_with_the_ca_and_the_client_certificate(monkeypatch, pki):
    set_env(monkeypatch, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="intake",
            sasl_password=SECRET, ssl_cafile=str(pki["ca"]), ssl_certfile=str(pki["cert"]),
            ssl_keyfile=str(pki["key"]), ssl_password=SECRET)
    for client in (kafka.producer("k:9093").client, kafka.consumer("k:9093", None)._client,
                   kafka.admin("k:9093")._client):
        context = client._ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert [dict(x[0] for x in ca["subject"])["commonName"] for ca in context.get_ca_certs()] == \
            ["warden-test-ca"]
        assert client._security_protocol == "SASL_SSL"


def test_a_wrong_key_password_is_a_configuration_error(monkeypatch, pki):
    """The key password reaches the TLS context: the wrong one fails, naming the settings, not the value."""
    set_env(monkeypatch, security_protocol="SSL", ssl_cafile=str(pki["ca"]), ssl_certfile=str(pki["cert"]),
            ssl_keyfile=str(pki["key"]), ssl_password="not-the-password")
    with pytest.raises(ConfigurationError, match="KAFKA_SSL_PASSWORD") as caught:
        kafka.connection("k:9093")
    assert "not-the-password" not in str(caught.value)


@pytest.mark.parametrize("values, says", [
    ({"security_protocol": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "intake"},
     "needs KAFKA_SASL_PASSWORD"),
    ({"sasl_username": "intake", "sasl_password": SECRET}, "does not authenticate with SASL"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI", "sasl_username": "intake",
      "sasl_password": SECRET}, "PLAIN"),
    ({"security_protocol": "TLS"}, "SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE names no file"),
    ({"security_protocol": "PLAINTEXT", "ssl_password": SECRET}, "does not use TLS"),
])
def test_combinations_that_cannot_work_are_refused_naming_the_settings(monkeypatch, values, says):
    set_env(monkeypatch, **values)
    with pytest.raises(ConfigurationError, match=re.escape(says)) as caught:
        read_kafka_security()
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigurationError):
        Settings()


def test_a_service_refuses_to_start_with_a_clear_message_and_no_traceback(monkeypatch):
    set_env(monkeypatch, security_protocol="SASL_SSL", sasl_username="intake", sasl_password=SECRET)
    result = CliRunner().invoke(cli, ["service", "intake"])
    assert result.exit_code == 1
    assert "Kafka security settings: KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM" in result.output
    assert "Traceback" not in result.output and SECRET not in result.output


def test_passwords_do_not_show_in_the_settings(monkeypatch):
    set_env(monkeypatch, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="intake",
            sasl_password=SECRET)
    settings = Settings()
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_no_kafka_client_is_built_outside_the_runtime_kafka_module():
    """Every client must get the security settings: aiokafka's classes are built only in kafka.py."""
    built = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient|Client)\s*\(")
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for top in ("warden", "services", "bench", "tests")
                 for path in sorted((ROOT / top).rglob("*.py")) if path != ROOT / "warden/runtime/kafka.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if built.search(line)]
    assert offenders == []

