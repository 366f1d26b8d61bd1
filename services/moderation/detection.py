"""Every automated check on the platform's facts, in one place: text banks, PDQ media banks, the classifier.

`Checks.check(content)` runs on what `platform.content` says a public item is
(never on what a reporter typed), when the content arrives or changes and when
the retroactive job checks it again (content.py); report handling never calls it.
Its answer is a list of `Detection`s, kept as the item's bank matches:

- a text bank (banks.yaml) that matches the title or the text;
- a PDQ media bank (a ThreatExchange / HMA CSV file) holding a hash within
  `media_distance` bits of one of the content's media hashes: `pdq:<bank id>`,
  high severity when the bank is configured so (it then delists at once);
- the classifier, when its score reaches `classifier_review_score`:
  `classifier:<model version>`, never high severity; its `Score` is returned
  beside the detections, and at or above the model's own delist threshold
  (`Score.delist`) the item is delisted (content.py).

`Checks.fingerprint` names the bank files' contents, the media settings and the
model version: content last checked under another fingerprint is checked again.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from warden.contract.events import ContentUpdated

from moderation.banks import BankScorer, Detection, load_banks
from moderation.classifier import CLASSES, Classifier, Score
from moderation.classifier.model import BENIGN
from moderation.config import MediaBank, ModerationConfig
from moderation.media import HashBank, MediaError, PdqHash, load_bank

CLASSIFIER = "classifier:"
PDQ = "pdq:"

# The classifier's classes as report reasons (the categories of statements of reasons and the queue).
MODEL_REASONS = {"drugs": "drugs", "weapons": "weapons", "scam": "scam", "forged_documents": "illegal_goods",
                 "counterfeit_money": "illegal_goods", "stolen_data": "illegal_goods", "hacking": "illegal_goods"}


def model_reason(label: str) -> str:
    """The report reason for a violation class."""
    return MODEL_REASONS.get(label, "illegal_goods")


def model_detection(score: Score, cfg: ModerationConfig, leaning: str | None = None) -> Detection | None:
    """The classifier's score as a match on the item (weighted by the score), or None below the review score.
    `leaning`: the likeliest violation class, for a score above the review score whose likeliest single class
    is still benign (the violation classes sharing the rest)."""
    if score.score < cfg.classifier_review_score:
        return None
    label = leaning if score.label == BENIGN and leaning else score.label
    return Detection(f"{CLASSIFIER}{score.version}", model_reason(label), False, round(score.score, 4),
                     f"classifier:{score.score:.3f}")


def leaning_class(classifier: Classifier, title: str | None, text: str | None) -> str:
    """The likeliest class other than benign."""
    probabilities = classifier.probabilities(title, text)
    return max((c for c in CLASSES if c != BENIGN), key=lambda c: probabilities[CLASSES.index(c)])


def model_facts(score: Score, threshold: float) -> str:
    """The statement of reasons' facts for a delisting by the classifier: the model version, score and class."""
    words = ", ".join(score.top_features[:5])
    return (f"The classifier (model {score.version}) scored the content's title and description, as the platform "
            f"describes them, {score.score:.3f} for {score.label.replace('_', ' ')}, at or above its delisting "
            f"threshold {threshold:.3f}" + (f"; strongest words: {words}." if words else "."))


@dataclass(frozen=True)
class MediaInBank:
    """One of the content's media within a bank's distance of a hash the bank holds: what a moderator sees."""
    media_id: str
    bank_id: str
    category: str
    high_severity: bool
    distance: int  # bits of the 256 that differ from the bank's nearest hash


@dataclass(frozen=True)
class MediaBanks:
    """The configured PDQ banks, each with the category and severity a match in it carries."""
    banks: list[tuple[str, MediaBank, HashBank]] = field(default_factory=list)

    @classmethod
    def load(cls, settings: list[MediaBank], distance: int) -> "MediaBanks":
        return cls([(s.id or s.file.stem, s, load_bank(s.file, s.id or s.file.stem, distance)) for s in settings])

    def matches(self, content: ContentUpdated) -> list[MediaInBank]:
        """Each media item's nearest hash in each bank that holds one within the distance, in media order."""
        found = []
        for media in content.media:
            try:
                probe = PdqHash.from_hex(media.pdq, media.quality)
            except MediaError:
                continue  # the contract's pattern already refuses these; nothing to match
            for bank_id, setting, bank in self.banks:
                nearest = bank.match(probe)
                if nearest:
                    found.append(MediaInBank(media.media_id, bank_id, setting.category, setting.severity == "high",
                                            nearest[0].distance))
        return found

    def detect(self, content: ContentUpdated) -> list[Detection]:
        """A detection per bank that any of the content's media matches (its first match's distance)."""
        found: dict[str, Detection] = {}
        for match in self.matches(content):
            if f"{PDQ}{match.bank_id}" not in found:
                found[f"{PDQ}{match.bank_id}"] = Detection(f"{PDQ}{match.bank_id}", match.category, match.high_severity,
                                                           1.0, f"pdq:{match.distance}")
        return list(found.values())


@dataclass(frozen=True)
class Check:
    detections: list[Detection]
    score: Score | None      # None: not scored (not public, or the classifier is off)


class Checks:
    """Built once per process (the classifier loads here), then `check` per content arrival or change."""

    def __init__(self, text: BankScorer, media: MediaBanks, classifier: Classifier | None, cfg: ModerationConfig,
                 fingerprint: str):
        self.text, self.media, self.classifier, self.cfg = text, media, classifier, cfg
        self.fingerprint = fingerprint

    @classmethod
    def load(cls, cfg: ModerationConfig) -> "Checks":
        """From the settings; a missing or malformed bank file or model stops start-up with an error naming it."""
        classifier = Classifier.load(cfg.model_dir) if cfg.classifier else None
        text = BankScorer(load_banks(cfg.banks_file))
        media = MediaBanks.load(cfg.media_banks, cfg.media_distance)
        return cls(text, media, classifier, cfg, fingerprint(cfg, classifier))

    @property
    def delist_threshold(self) -> float | None:
        return self.classifier.metadata.threshold if self.classifier else None

    def check(self, content: ContentUpdated) -> Check:
        if not content.public_in_search:
            return Check([], None)
        detections = self.text.detect(content) + self.media.detect(content)
        score = self.classifier.score(content.title, content.text) if self.classifier else None
        if score is None:
            return Check(detections, None)
        leaning = leaning_class(self.classifier, content.title, content.text) \
            if score.label == BENIGN and score.score >= self.cfg.classifier_review_score else None
        found = model_detection(score, self.cfg, leaning)
        return Check(detections + [found] if found else detections, score)

    def detect(self, content: ContentUpdated) -> list[Detection]:
        """The `Scorer` interface (banks.py): the detections alone."""
        return self.check(content).detections


def fingerprint(cfg: ModerationConfig, classifier: Classifier | None) -> str:
    """What the checks are made of: the bank files' bytes, the media settings, the model version."""
    digest = hashlib.sha256()
    digest.update(cfg.banks_file.read_bytes())
    for bank in cfg.media_banks:
        digest.update(f"\0{bank.id}\0{bank.category}\0{bank.severity}\0".encode())
        digest.update(bank.file.read_bytes())
    digest.update(f"\0distance={cfg.media_distance}\0model={classifier.version if classifier else '-'}"
                  f"\0review={cfg.classifier_review_score}".encode())
    return digest.hexdigest()[:16]
