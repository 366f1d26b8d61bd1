"""The content classifier at run time: load once, score a title and a text.

The model is a scikit-learn pipeline (character n-gram TF-IDF on folded text,
then a multinomial logistic regression over `CLASSES`), stored with skops, which
refuses to load any type outside scikit-learn's and numpy's own: a model file
cannot run code. Beside it, `classifier.json` records the version, the delist
threshold and the held-out figures it was installed with.

`score` works on the pipeline's learned arrays directly (vocabulary, idf,
coefficients) instead of calling `predict_proba`: the same arithmetic without
scikit-learn's per-call input validation, which cost most of a call's time.
`tests/unit/moderation/test_classifier.py` checks both give the same numbers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skops.io

from moderation.folding import fold

BENIGN = "benign"
# In scikit-learn's order (sorted), so that a model's `classes_` equal these.
CLASSES = tuple(sorted((BENIGN, "drugs", "weapons", "forged_documents", "counterfeit_money", "stolen_data",
                        "hacking", "scam")))
MODEL_DIR = Path(__file__).parent / "model"
MODEL_FILE = "classifier.skops"
META_FILE = "classifier.json"


class ModelError(Exception):
    """The model files are missing, unreadable, or not what this code expects."""


@dataclass(frozen=True)
class Score:
    score: float                  # probability that the content is a violation (1 - P(benign)), 0 to 1
    label: str                    # the most likely class: benign or a violation category
    version: str                  # the model version that gave this score
    top_features: tuple[str, ...]  # the words of the folded text that pushed the score up most, strongest first
    delist: bool = False          # score at or above the model's delist threshold


# What the model reads of each field: a channel's description is a few thousand characters at most, and
# the cap bounds a call's cost (about 5 ms per 1,000 characters of mixed scripts) whatever a publisher sends.
MAX_FIELD_CHARS = 5_000


def model_text(title: str | None, text: str | None) -> str:
    """What the model reads: the folded title and text (each cut at MAX_FIELD_CHARS) as one string."""
    return fold(" ".join(t[:MAX_FIELD_CHARS] for t in (title, text) if t))


@dataclass(frozen=True)
class Metadata:
    version: str
    threshold: float              # delist at or above this score
    target_precision: float
    metrics: dict                 # held-out figures at installation
    sklearn_version: str
    examples: int

    @classmethod
    def read(cls, path: Path) -> "Metadata":
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(version=data["version"], threshold=float(data["threshold"]),
                   target_precision=float(data["target_precision"]), metrics=data.get("metrics", {}),
                   sklearn_version=data.get("sklearn_version", ""), examples=int(data.get("examples", 0)))

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"


def load_pipeline(path: Path):
    """A skops file's pipeline, trusting no type beyond skops' defaults (scikit-learn's and numpy's)."""
    try:
        return skops.io.load(path)
    except FileNotFoundError:
        raise ModelError(f"no model at {path}: run `warden moderation train`") from None
    except Exception as exc:  # skops raises UntrustedTypesFoundException or a format error: either way, unusable
        raise ModelError(f"cannot load the model at {path}: {exc}") from None


class Classifier:
    """A loaded model. Build it once per process (`Classifier.load()`), then call `score` per item."""

    def __init__(self, pipeline, metadata: Metadata):
        self.pipeline = pipeline
        self.metadata = metadata
        vectorizer, model = pipeline[0], pipeline[-1]
        if tuple(str(c) for c in model.classes_) != CLASSES:
            raise ModelError(f"model classes {list(model.classes_)} are not {list(CLASSES)}")
        self._analyse = vectorizer.build_analyzer()
        self._vocabulary = vectorizer.vocabulary_
        self._idf = vectorizer.idf_
        self._sublinear = vectorizer.sublinear_tf
        self._coef = np.ascontiguousarray(model.coef_.T)       # features x classes
        self._intercept = model.intercept_
        self._features = vectorizer.get_feature_names_out()
        self._benign = CLASSES.index(BENIGN)

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> "Classifier":
        directory = Path(directory)
        try:
            metadata = Metadata.read(directory / META_FILE)
        except FileNotFoundError:
            raise ModelError(f"no model metadata at {directory / META_FILE}: run `warden moderation train`") from None
        except (KeyError, ValueError) as exc:
            raise ModelError(f"unreadable model metadata at {directory / META_FILE}: {exc}") from None
        return cls(load_pipeline(directory / MODEL_FILE), metadata)

    @property
    def version(self) -> str:
        return self.metadata.version

    def _vector(self, folded: str) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, int] = {}
        for gram in self._analyse(folded):
            index = self._vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self._sublinear:
            tf = np.log(tf) + 1.0
        weights = tf * self._idf[indices]
        norm = math.sqrt(float(weights @ weights)) if len(weights) else 0.0
        return indices, (weights / norm if norm else weights)

    def probabilities(self, title: str | None, text: str | None) -> np.ndarray:
        """P(class) for each of `CLASSES`, in that order."""
        indices, weights = self._vector(model_text(title, text))
        return self._softmax(weights @ self._coef[indices] + self._intercept)

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()

    def score(self, title: str | None, text: str | None, top: int = 5) -> Score:
        folded = model_text(title, text)
        indices, weights = self._vector(folded)
        probabilities = self._softmax(weights @ self._coef[indices] + self._intercept)
        best = int(np.argmax(probabilities))
        violation = 1.0 - float(probabilities[self._benign])
        # The n-grams that moved the text most towards the violation class it leans to, against benign.
        leaning = best if best != self._benign else int(np.argsort(probabilities)[-2])
        push = weights * (self._coef[indices, leaning] - self._coef[indices, self._benign])
        strongest = [self._features[indices[i]] for i in np.argsort(-push) if push[i] > 0]
        return Score(score=round(violation, 6), label=CLASSES[best], version=self.version,
                     top_features=_words_containing(folded, strongest, top),
                     delist=violation >= self.metadata.threshold)


def _words_containing(folded: str, grams: list[str], limit: int) -> tuple[str, ...]:
    """The folded words the strongest n-grams came from: readable for moderators where `caine` is not."""
    words = folded.split()
    found: list[str] = []
    for gram in grams:
        piece = gram.strip()
        if not piece:
            continue
        for word in words:
            if piece in word and word not in found:
                found.append(word)
                break
        if len(found) >= limit:
            break
    return tuple(found)
