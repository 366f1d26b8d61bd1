"""Automated detection on text: banks of known-bad content, behind the `Scorer` interface.

`Scorer.detect(content)` is only ever given the platform's facts (`ContentUpdated`
from platform.content: title, text, media), never what a reporter typed.
`BankScorer` is rule-based (exact, normalised, keyword and regex matches from
banks.yaml); `detection.Checks` runs it with the PDQ media banks and the
classifier when content arrives or changes (content.py), never per report.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import yaml

from moderation.folding import fold
from warden.contract.events import ContentUpdated


def normalise(text: str) -> str:
    """Case, accents, look-alike letters, leetspeak, spaced-out letters, punctuation and spacing folded away."""
    return fold(text)


@dataclass(frozen=True)
class Detection:
    bank_id: str
    category: str     # a report reason: child_abuse, terrorism, drugs...
    high_severity: bool
    weight: float
    how: str          # exact | normalised | keyword:<lang> | regex:<lang>


@dataclass(frozen=True)
class Bank:
    id: str
    category: str
    high_severity: bool
    weight: float = 1.0
    exact: frozenset[str] = frozenset()
    normalised: frozenset[str] = frozenset()
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: dict[str, tuple[re.Pattern, ...]] = field(default_factory=dict)

    def match(self, texts: list[str] | tuple[str, ...], folded: list[str] | None = None) -> Detection | None:
        """`folded`: the texts already `normalise`d (a scorer with many banks folds them once)."""
        for text in texts:
            if text in self.exact:
                return self._found("exact")
        folded = folded if folded is not None else [normalise(t) for t in texts]
        for text in folded:
            if text in self.normalised:
                return self._found("normalised")
        for lang, words in self.keywords.items():
            for text in folded:
                if any(f" {w} " in f" {text} " for w in words):
                    return self._found(f"keyword:{lang}")
        for lang, patterns in self.patterns.items():
            for text in folded:
                if any(p.search(text) for p in patterns):
                    return self._found(f"regex:{lang}")
        return None

    def _found(self, how: str) -> Detection:
        return Detection(self.id, self.category, self.high_severity, self.weight, how)


def parse_banks(document: dict) -> list[Bank]:
    banks = []
    for entry in document.get("banks", []):
        banks.append(Bank(
            id=entry["id"], category=entry["category"], high_severity=entry.get("severity") == "high",
            weight=float(entry.get("weight", 1.0)),
            exact=frozenset(entry.get("exact", [])),
            normalised=frozenset(normalise(t) for t in entry.get("normalised", [])),
            keywords={lang: tuple(normalise(w) for w in words) for lang, words in entry.get("keywords", {}).items()},
            patterns={lang: tuple(re.compile(p) for p in pats) for lang, pats in entry.get("regex", {}).items()},
        ))
    return banks


def load_banks(path: Path) -> list[Bank]:
    return parse_banks(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


class Scorer(Protocol):
    def detect(self, content: ContentUpdated) -> list[Detection]: ...


class BankScorer:
    """The rule-based default: every bank that matches the title or the text.

    The platform re-sends content whose title and text did not change, so the
    answers for the last `cache_size` distinct (title, text) pairs are kept."""

    def __init__(self, banks: list[Bank], cache_size: int = 4096):
        self.banks = banks
        self._detect_texts = lru_cache(maxsize=cache_size)(self._match_all)

    def detect(self, content: ContentUpdated) -> list[Detection]:
        texts = tuple(t for t in (content.title, content.text) if t)
        return list(self._detect_texts(texts)) if texts else []

    def _match_all(self, texts: tuple[str, ...]) -> tuple[Detection, ...]:
        folded = [normalise(t) for t in texts]
        return tuple(d for d in (bank.match(texts, folded) for bank in self.banks) if d is not None)
