"""Configuration from the environment (pydantic-settings).

Every setting reads `WARDEN_<NAME>`; the two connection strings also accept the
conventional `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` as they are.
"""
from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
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

    # Consumer groups are "<prefix>-<service>"; tests give each run its own prefix.
    group_prefix: str = "warden"

    def group_id(self, service: str) -> str:
        return f"{self.group_prefix}-{service}"
