"""Disclosure's own settings, read from `WARDEN_*` like the runtime's."""
from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from warden.audit import AuditSettings


class DisclosureSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    # Base64 raw 32-byte Ed25519 key (`warden keygen`). Unset: a key generated once and
    # kept in the service's schema (embedded default only; see docs/disclosure.md).
    disclosure_private_key: SecretStr | None = None
    # Legal review's decision public keys (docs/deployment.md, "Keys"): only decisions they sign act.
    decision_public_keys: str = ""
    # Sessions and superseded identifiers older than this are purged, held accounts excepted.
    # Sessions go a week at a time (their weekly partition is dropped once all of it is past
    # this), so a session is kept between retention_days and retention_days + 7.
    retention_days: int = 365
    retention_interval_s: float = 3600.0
    # Weekly session partitions are created this far ahead of the clock (and back to retention).
    partitions_ahead_weeks: int = 4
    # How often due user notices are looked for, and how long a hold lasts when the
    # decision gives no hold_until (18 U.S.C. § 2703(f): 90 days).
    notice_interval_s: float = 5.0
    default_hold_days: int = 90
    metrics_interval_s: float = 15.0


class AuditKeySettings(AuditSettings):
    """Disclosure signs its audit chain: WARDEN_AUDIT_PRIVATE_KEY and the checkpoint interval (warden/audit.py)."""
