"""Configuration from the environment (pydantic-settings).

Every setting reads `WARDEN_<NAME>`; the two connection strings and the Kafka
security settings also accept the conventional `KAFKA_BOOTSTRAP_SERVERS`,
`DATABASE_URL` and `KAFKA_SECURITY_PROTOCOL` & co. as they are.
"""
from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warden.contract.access import consumer_groups

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

# The consumers' fetch wait (aiokafka's default is 500 ms). Against Apache Kafka it only bounds how long
# a fetch that finds nothing new is parked. The embedded broker (Tansu 0.6.0) answers a fetch at once
# when it finds records; finding none, it sleeps half of what is left of the wait and looks again. A
# consumer fetches again while it handles a batch, finds nothing new, and is answered half a wait later:
# half the wait paces every consumer. Each answer is one batch, and each batch costs a transaction, an
# outbox pass and a produce request, and the broker a listing of the partition's record batches. A
# longer wait means fewer, larger batches and a longer wait in each hop; the legal pipeline's
# measurements behind 50 ms, and its price in CPU, are in docs/performance.md.
FETCH_MAX_WAIT_MS = 50


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def from_environment(cls: type[AnySettings]) -> AnySettings:
    """`cls()`, parsed once for each distinct set of `WARDEN_*` variables: a parse takes ~0.5 ms and a
    hot path may ask once per batch. Only for classes that read nothing but `WARDEN_*` variables; the
    instance is shared, so callers never change it."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("WARDEN_")))
    return _parsed(cls, environment)


@lru_cache(maxsize=32)
def _parsed(cls: type[AnySettings], environment: tuple[tuple[str, str], ...]) -> AnySettings:
    return cls()


class ConfigurationError(Exception):
    """A process cannot start as configured; the message says which settings, never their values."""


def _kafka(name: str) -> AliasChoices:
    return AliasChoices(f"KAFKA_{name}", f"WARDEN_KAFKA_{name}")


class KafkaSecurity(BaseSettings):
    """How every Kafka client of a process authenticates and encrypts (warden/runtime/kafka.py).

    Read from `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`,
    `KAFKA_SASL_PASSWORD`, `KAFKA_SSL_CAFILE`, `KAFKA_SSL_CERTFILE`, `KAFKA_SSL_KEYFILE`,
    `KAFKA_SSL_PASSWORD` (or the same names prefixed `WARDEN_`). A combination that cannot
    work is refused when the settings are read, naming the variables, never echoing a value.
    """

    # Inputs are never echoed in errors: they may be passwords.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    security_protocol: SecurityProtocol = Field(default="PLAINTEXT", validation_alias=_kafka("SECURITY_PROTOCOL"))
    sasl_mechanism: SaslMechanism | None = Field(default=None, validation_alias=_kafka("SASL_MECHANISM"))
    sasl_username: str | None = Field(default=None, validation_alias=_kafka("SASL_USERNAME"))
    sasl_password: SecretStr | None = Field(default=None, validation_alias=_kafka("SASL_PASSWORD"))
    ssl_cafile: Path | None = Field(default=None, validation_alias=_kafka("SSL_CAFILE"))
    ssl_certfile: Path | None = Field(default=None, validation_alias=_kafka("SSL_CERTFILE"))
    ssl_keyfile: Path | None = Field(default=None, validation_alias=_kafka("SSL_KEYFILE"))
    ssl_password: SecretStr | None = Field(default=None, validation_alias=_kafka("SSL_PASSWORD"))

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _workable(self) -> KafkaSecurity:
        protocol = f"KAFKA_SECURITY_PROTOCOL={self.security_protocol}"
        if self.uses_sasl:
            missing = [name for name, value in (("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                                                ("KAFKA_SASL_USERNAME", self.sasl_username),
                                                ("KAFKA_SASL_PASSWORD", self.sasl_password)) if not value]
            if missing:
                raise ValueError(f"{protocol} needs {', '.join(missing)}")
        else:
            given = [name for name, value in (("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                                              ("KAFKA_SASL_USERNAME", self.sasl_username),
                                              ("KAFKA_SASL_PASSWORD", self.sasl_password)) if value]
            if given:
                raise ValueError(f"{', '.join(given)} set but {protocol} does not authenticate with SASL "
                                 "(use SASL_PLAINTEXT or SASL_SSL)")
        files = (("KAFKA_SSL_CAFILE", self.ssl_cafile), ("KAFKA_SSL_CERTFILE", self.ssl_certfile),
                 ("KAFKA_SSL_KEYFILE", self.ssl_keyfile))
        if not self.uses_ssl:
            given = [name for name, value in (*files, ("KAFKA_SSL_PASSWORD", self.ssl_password)) if value]
            if given:
                raise ValueError(f"{', '.join(given)} set but {protocol} does not use TLS (use SSL or SASL_SSL)")
            return self
        for name, path in files:
            if path is not None and not path.is_file():
                raise ValueError(f"{name} names no file: {path}")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the client certificate)")
        if self.ssl_password and not self.ssl_certfile:
            raise ValueError("KAFKA_SSL_PASSWORD needs KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE")
        return self


def read_kafka_security() -> KafkaSecurity:
    """The environment's Kafka security settings, or a `ConfigurationError` saying what is wrong."""
    try:
        return KafkaSecurity()
    except ValidationError as exc:
        raise ConfigurationError(f"Kafka security settings: {_reasons(exc)}") from None


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
        for e in exc.errors(include_url=False, include_input=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "WARDEN_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str = Field(
        default="postgresql://postgres@localhost:5432/postgres",
        validation_alias=AliasChoices("DATABASE_URL", "WARDEN_DATABASE_URL"),
    )
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    # Addresses (IPs or CIDRs, comma-separated) of the proxies whose X-Forwarded-Proto/-For the HTTP server
    # believes: a TLS-terminating ingress in front of the consoles. Empty: nobody's, the headers are ignored.
    trusted_proxies: str = ""
    log_level: str = "INFO"
    # Kafka consumer tuning
    batch_max_records: int = 500
    # Consumer batches in flight at once (Service.batches_in_flight); each takes a connection beyond db_pool_size.
    batches_in_flight: int = Field(default=1, ge=1, le=8)
    poll_timeout_ms: int = 200
    # How long the broker may hold a fetch that finds nothing new (FETCH_MAX_WAIT_MS above).
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    # Offsets are committed at most this often (and on stop and rebalance): they only decide what a
    # restart redelivers, which the inbox drops. 0: after every batch.
    commit_interval_ms: int = 200
    # Run the outbox relay in this process (turn off to run consumers and relay apart).
    outbox_relay: bool = True
    outbox_batch_size: int = 500
    # Backoff for transient failures (database or broker down), in seconds
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    db_pool_size: int = 4
    # Apply the service's pending migrations at start (advisory-locked: replicas may start together).
    # false: `warden migrate` applies them (a Kubernetes Job) and the service waits until none is pending.
    migrate_on_start: bool = True
    # Inbox rows are kept this long (longer than any topic's retention), then pruned in small batches.
    inbox_retention_days: float = 30.0
    inbox_prune_interval_s: float = 600.0
    inbox_prune_batch_size: int = 1000
    # The services' event loop: uvloop (libuv), or asyncio's own (`asyncio`) to rule it out.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # How the Kafka clients authenticate and encrypt (KafkaSecurity above).
    kafka_security: KafkaSecurity = Field(default_factory=read_kafka_security)

    # The embedded default (`warden up` with its own PostgreSQL, the tests): what a workstation may
    # make up for itself, such as disclosure's signing key, kept in its schema. Never in production.
    embedded_defaults: bool = False

    # Trust anchors (warden/keys.py): base64 Ed25519 public keys, separated by commas or spaces.
    # The operators' registry keys, checked on every `legal.authorities` record.
    registry_public_keys: str = ""
    # Distinct registry keys that must sign a new authority or a new key (revocations need one).
    registry_quorum: int = Field(default=1, ge=1, le=5)
    # A registry record dated further ahead than this is refused.
    registry_max_skew_s: int = 300

    # Consumer groups are "<prefix>-<service>"; tests give each run its own prefix.
    group_prefix: str = "warden"

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_only(cls, value: str) -> str:
        for entry in trusted_proxy_list(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"WARDEN_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from None
        return value

    def group_id(self, service: str) -> str:
        return consumer_groups(self.group_prefix, service)[0]

    def views_group_id(self, service: str) -> str:
        """The consumer group of the service's views (Service.consumers)."""
        return consumer_groups(self.group_prefix, service)[1]


def trusted_proxy_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def require_connections(settings: Settings) -> None:
    """Startup check of every service: outside the embedded default, where the broker and the database
    are is configured, never assumed (the defaults point at this machine, where production has neither)."""
    if settings.embedded_defaults:
        return
    missing = [variable for field, variable in (("kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
                                                ("database_url", "DATABASE_URL"))
               if field not in settings.model_fields_set]
    if missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: outside the embedded default "
            "(WARDEN_EMBEDDED_DEFAULTS=true, set by `warden up` with its own broker and database) a service is "
            "told where they are (docs/deployment.md, 'Configuration')")
