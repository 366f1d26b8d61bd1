"""Configuration from the environment (pydantic-settings).

Every setting reads `WARDEN_<NAME>`; the two connection strings also accept the
conventional `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` as they are.
"""
from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    log_level: str = "INFO"
    # Kafka consumer tuning
    batch_max_records: int = 500
    poll_timeout_ms: int = 200
    # How long the broker may hold a fetch that finds nothing new (see warden/runtime/kafka.py).
    fetch_max_wait_ms: int = 50
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
    # The services' event loop: uvloop (libuv), or asyncio's own (`asyncio`) to rule it out.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # Trust anchors (warden/keys.py): base64 Ed25519 public keys, separated by commas or spaces.
    # The operators' registry keys, checked on every `legal.authorities` record.
    registry_public_keys: str = ""
    # Distinct registry keys that must sign a new authority or a new key (revocations need one).
    registry_quorum: int = Field(default=1, ge=1, le=5)
    # A registry record dated further ahead than this is refused.
    registry_max_skew_s: int = 300
    # Legal review signs its decisions with this key; disclosure accepts decisions signed by these.
    decision_private_key: SecretStr | None = None
    decision_public_keys: str = ""
    # Legal review and disclosure sign their audit entries and checkpoints with this key (warden/audit.py);
    # `warden audit verify` accepts entries and checkpoints signed by these.
    audit_private_key: SecretStr | None = None
    audit_public_keys: str = ""
    # How often a service publishes its audit chain's head, when it moved, on legal.audit.checkpoints.
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)

    # Consumer groups are "<prefix>-<service>"; tests give each run its own prefix.
    group_prefix: str = "warden"

    def group_id(self, service: str) -> str:
        return f"{self.group_prefix}-{service}"
