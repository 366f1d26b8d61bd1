"""Moderation settings from the environment (`WARDEN_MODERATION_*`); defaults documented in docs/moderation.md."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warden.runtime.settings import ConfigurationError

# DSA Art. 17 territorial scope: delisting applies to public search in the EEA by default.
EEA = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
       "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"]

# How bad a report's reason is, before the reporter's weight (score = sum of weight x severity).
DEFAULT_SEVERITY = {
    "child_abuse": 10.0, "terrorism": 10.0, "weapons": 4.0, "drugs": 4.0, "illegal_goods": 3.0,
    "violence": 3.0, "scam": 2.0, "copyright": 1.0, "spam": 1.0, "other": 1.0,
}


class MediaBank(BaseModel):
    """A bank of known-bad PDQ hashes (a ThreatExchange / HMA CSV file) and what a match in it means."""
    file: Path
    id: str | None = None      # default: the file's name without its extension
    category: str = "child_abuse"   # a report reason
    severity: Literal["high", "normal"] = "high"   # high: a match delists at once; normal: it is queued


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
    # A moderator who opens a queued item in the console holds it this long (others cannot decide it meanwhile).
    claim_minutes: float = 15.0
    # The platform's media viewer, for the console: a URL template with {content_id} and {media_id} (e.g.
    # https://media.platform.internal/{content_id}/{media_id}). Empty: Warden holds PDQ hashes only and the
    # console shows none. Set: the item's images are shown blurred, and a moderator reveals one explicitly
    # (recorded, for media_reveal_minutes).
    media_url: str = ""
    media_reveal_minutes: float = Field(default=10.0, gt=0)
    # How long an item may wait in the queue for a decision (the console shows time left and breaches):
    # high severity (child abuse, terrorism, bank matches) within the hour, as removal orders must be met
    # (Regulation (EU) 2021/784, Art. 3(3)); everything else within a day.
    sla_hours_high: float = Field(default=1.0, gt=0)
    sla_hours_normal: float = Field(default=24.0, gt=0)
    banks_file: Path = Path(__file__).parent / "banks.yaml"
    # The classifier (classifier/): its directory (classifier.skops and classifier.json; the package may be
    # read-only, so a newly trained model can live elsewhere), on or off, and the score from which content is
    # queued for a human. Above the model's own delist threshold (classifier.json) it delists.
    model_dir: Path = Path(__file__).parent / "classifier" / "model"
    classifier: bool = True
    classifier_review_score: float = Field(default=0.5, ge=0.0, le=1.0)
    # PDQ media banks: JSON list of {"file", "id", "category", "severity"}; near-duplicates within this
    # Hamming distance match.
    media_banks: list[MediaBank] = []
    media_distance: int = Field(default=31, ge=0, le=256)
    # Retroactive checks: when the banks or the model change, public content is checked again in batches of
    # this size with this pause between them (idle: how often to look for content checked with older ones).
    recheck_batch: int = Field(default=20, ge=1)
    recheck_pause_seconds: float = 1.0
    recheck_idle_seconds: float = 60.0
    # {"<bearer token>": {"name": "alice", "roles": ["moderator", "appeals"]}}
    tokens: dict[str, Moderator] = {}

    @field_validator("media_url")
    @classmethod
    def _media_viewer(cls, value: str) -> str:
        if not value:
            return value
        try:
            parts = urlsplit(value.format(content_id="c", media_id="m"))
        except (KeyError, IndexError, ValueError):
            parts = None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or "{media_id}" not in value:
            raise ValueError("media_url must be an http(s) URL template naming {media_id} (and maybe {content_id})")
        return value

    def media_origin(self) -> str | None:
        """The origin the console's images come from (its CSP img-src), or None when no viewer is configured."""
        if not self.media_url:
            return None
        parts = urlsplit(self.media_url.format(content_id="c", media_id="m"))
        return f"{parts.scheme}://{parts.netloc}"

    def media_link(self, content_id: str, media_id: str) -> str:
        return self.media_url.format(content_id=quote(content_id, safe=""), media_id=quote(media_id, safe=""))

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_from_json(cls, value):
        return json.loads(value) if isinstance(value, str) else value


def require_moderation_tokens(cfg: ModerationConfig, settings) -> None:
    """Startup check: outside the embedded default at least one moderator can sign in."""
    if not cfg.tokens and not settings.embedded_defaults:
        raise ConfigurationError("WARDEN_MODERATION_TOKENS is not set: no moderator could sign in "
                                 "(docs/deployment.md, 'Secrets'); `warden up` makes a development token")
