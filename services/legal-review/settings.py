"""Legal review's own settings, read from `WARDEN_*` like the runtime's."""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from warden.audit import AuditSettings


class DecisionKeySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    # Signs every approval and rejection (legal_review/keys.py); never stored in the database.
    decision_private_key: SecretStr | None = None


class AuditKeySettings(AuditSettings):
    """Legal review signs its audit chain: WARDEN_AUDIT_PRIVATE_KEY and the checkpoint interval (warden/audit.py)."""


class ReviewConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    # How long "Take this case" holds a case for its reviewer (others cannot decide it or ask about it meanwhile).
    review_claim_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
