"""Moderation settings from the environment (`WARDEN_MODERATION_*`); defaults documented in docs/moderation.md."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# DSA Art. 17 territorial scope: delisting applies to public search in the EEA by default.
EEA = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
       "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"]

# How bad a report's reason is, before the reporter's weight (score = sum of weight x severity).
DEFAULT_SEVERITY = {
    "child_abuse": 10.0, "terrorism": 10.0, "weapons": 4.0, "drugs": 4.0, "illegal_goods": 3.0,
    "violence": 3.0, "scam": 2.0, "copyright": 1.0, "spam": 1.0, "other": 1.0,
}


class Moderator(BaseModel):
    name: str
    roles: list[str]


class ModerationConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_MODERATION_", extra="ignore")

    window_hours: float = 24.0
    review_threshold: float = 2.5   # a new reporter's child-abuse or terrorism report reaches a human alone
    delist_threshold: float = 12.0
    severity: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    # Reporter trust: new reporters start at a low prior, moved by moderators' outcomes, kept inside [min, max].
    trust_new: float = 0.25
    # Established: trust earned from outcomes (four upheld reports from the prior). Report volume delists only
    # when established reporters bring at least `min_established_score` of the score; otherwise it is queued.
    established_trust: float = 1.0
    min_established_score: float = 6.0
    # Coordinated: this many unproven reporters on one item within this many minutes is queued, never acted on.
    burst_min_reporters: int = 3
    burst_minutes: float = 60.0
    # Reports of content platform.content has not described yet wait this long, then go to humans.
    unknown_content_wait_hours: float = 6.0
    unknown_content_sweep_seconds: float = 30.0
    trust_uphold_step: float = 0.2
    trust_reject_step: float = 0.3
    trust_min: float = 0.1
    trust_max: float = 2.0
    # DSA Art. 22: trusted flaggers (organisation reporter ids) weigh more and go first.
    trusted_flaggers: list[str] = []
    trusted_flagger_weight: float = 2.5
    # DSA Art. 23: misuse = many manifestly unfounded reports, by count and share, in a window.
    misuse_window_days: float = 30.0
    misuse_min_unfounded: int = 5
    misuse_min_share: float = 0.7
    misuse_suspension_days: float = 14.0
    territorial_scope: list[str] = Field(default_factory=lambda: list(EEA))
    banks_file: Path = Path(__file__).parent / "banks.yaml"
    # {"<bearer token>": {"name": "alice", "roles": ["moderator", "appeals"]}}
    tokens: dict[str, Moderator] = {}

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_from_json(cls, value):
        return json.loads(value) if isinstance(value, str) else value
