"""Training: the seed corpus plus moderators' decisions -> a model, judged on a held-out split.

Steps (`train`):
1. Examples: `corpus/seed.jsonl` and, optionally, moderators' recorded decisions
   (`read_decisions`). Every example is folded exactly as at run time.
2. A seeded split that is stable as the corpus grows: an example is held out when
   a seeded hash of its content falls in the first `HELD_OUT` of the hash range,
   so about that share of every class is held out (stratified in expectation), and
   an example stays on its side when examples are added. The current model was
   therefore never trained on this split's older examples, and the comparison in
   step 5 is fair.
3. The delist threshold is chosen on out-of-fold scores of the training part
   (five folds), as the lowest score whose precision reaches the target: the
   held-out split never sees the choice, so its figures are honest.
4. The held-out split gives precision and recall at that threshold and ROC AUC
   (violation against benign).
5. The current model, if any, is scored on the same held-out split; a new model
   with a lower ROC AUC, or one that misses the precision target where the
   current one meets it, is not installed (`compare`).

Everything is seeded: the same examples give the same model and the same version.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from moderation.classifier.model import (BENIGN, CLASSES, META_FILE, MODEL_DIR, MODEL_FILE, Classifier, Metadata,
                                         ModelError, model_text)

SEED_CORPUS = Path(__file__).parent / "corpus" / "seed.jsonl"
SEED = 20
HELD_OUT = 0.25
TARGET_PRECISION = 0.95
AUC_TOLERANCE = 0.005          # a retrained model may lose this much ROC AUC to noise and still be installed
PARAMETERS = {"analyzer": "char_wb", "ngram_range": [3, 5], "min_df": 2, "max_features": 60000,
              "sublinear_tf": True, "C": 50.0}


class CorpusError(ValueError):
    """An example file with a line that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    title: str
    text: str
    category: str             # one of CLASSES
    language: str = ""
    source: str = "seed"      # seed | decisions


def read_corpus(path: Path = SEED_CORPUS) -> list[Example]:
    """The labelled corpus: JSON lines with title, text, label (violation|benign), category, language."""
    examples = []
    for number, row in _json_lines(path):
        label = row.get("label")
        if label not in ("violation", "benign"):
            raise CorpusError(f"{path}:{number}: label must be violation or benign, not {label!r}")
        category = BENIGN if label == "benign" else row.get("category")
        if category not in CLASSES:
            raise CorpusError(f"{path}:{number}: category {category!r} is not one of {', '.join(c for c in CLASSES if c != BENIGN)}")
        examples.append(Example(_text(row, "title", path, number), _text(row, "text", path, number), category,
                                str(row.get("language", ""))))
    return examples


def read_decisions(path: Path) -> tuple[list[Example], int]:
    """Moderators' decisions as examples, and how many were left out.

    One JSON object a line: `title`, `text`, `action` (`delist` or `keep`; `restore`,
    an appeal overturned, counts as keep) and, for delist, `category`. A delisting
    in a category the classifier does not model (child abuse, terrorism: the banks'
    work) is left out and counted.
    """
    examples, skipped = [], 0
    for number, row in _json_lines(path):
        action = row.get("action")
        if action in ("keep", "restore"):
            category = BENIGN
        elif action == "delist":
            category = row.get("category")
            if category not in CLASSES or category == BENIGN:
                skipped += 1
                continue
        else:
            raise CorpusError(f"{path}:{number}: action must be delist, keep or restore, not {action!r}")
        examples.append(Example(_text(row, "title", path, number), _text(row, "text", path, number), category,
                                str(row.get("language", "")), source="decisions"))
    return examples, skipped


def _json_lines(path: Path):
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{number}: not a JSON object")
        yield number, row


def _text(row: dict, key: str, path: Path, number: int) -> str:
    value = row.get(key) or ""
    if not isinstance(value, str):
        raise CorpusError(f"{path}:{number}: {key} must be a string")
    return value


def new_pipeline() -> Pipeline:
    p = PARAMETERS
    return Pipeline([
        ("ngrams", TfidfVectorizer(analyzer=p["analyzer"], ngram_range=tuple(p["ngram_range"]), min_df=p["min_df"],
                                   max_features=p["max_features"], sublinear_tf=p["sublinear_tf"])),
        ("model", LogisticRegression(C=p["C"], solver="newton-cg", max_iter=1000, class_weight="balanced")),
    ])


def violation_scores(pipeline: Pipeline, texts: list[str]) -> np.ndarray:
    """1 - P(benign) for already folded texts."""
    probabilities = pipeline.predict_proba(texts)
    return 1.0 - probabilities[:, list(pipeline.classes_).index(BENIGN)]


def choose_threshold(y_violation: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The lowest score at which everything scored that high is a violation at least `target` of the time.

    1.0 (delist nothing automatically) when no threshold reaches the target.
    """
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        if flagged.any() and y_violation[flagged].mean() >= target:
            return float(threshold)
    return 1.0


def held_out_metrics(y_violation: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    flagged = scores >= threshold
    return {
        "roc_auc": round(float(roc_auc_score(y_violation, scores)), 4),
        "precision": round(float(precision_score(y_violation, flagged, zero_division=0)), 4),
        "recall": round(float(recall_score(y_violation, flagged, zero_division=0)), 4),
        "threshold": round(threshold, 4),
        "examples": int(len(y_violation)),
        "violations": int(y_violation.sum()),
    }


@dataclass
class Trained:
    pipeline: Pipeline
    metadata: Metadata
    held_out: list[Example]
    counts: dict = field(default_factory=dict)


def inputs_digest(examples: list[Example]) -> str:
    """What a model is trained from: the examples, the parameters, the split and the scikit-learn version."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"parameters": PARAMETERS, "seed": SEED, "held_out": HELD_OUT,
                              "sklearn": sklearn.__version__}, sort_keys=True).encode())
    for e in examples:
        digest.update(json.dumps([e.title, e.text, e.category], ensure_ascii=False).encode())
    return digest.hexdigest()[:10]


def model_version(examples: list[Example], pipeline: Pipeline) -> str:
    """`charlr-<inputs>-<weights>`: the same inputs give the same first part; any change of the
    learned weights (a change in folding, say) changes the second, so a version names one model."""
    weights = np.round(pipeline[-1].coef_, 5).tobytes() + np.round(pipeline[0].idf_, 5).tobytes()
    return f"charlr-{inputs_digest(examples)}-{hashlib.sha256(weights).hexdigest()[:6]}"


def is_held_out(example: Example) -> bool:
    key = json.dumps([SEED, example.title, example.text, example.category], ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") < HELD_OUT * 2**64


def train(examples: list[Example], target_precision: float = TARGET_PRECISION) -> Trained:
    # One BLAS thread: the problem is small, and a fixed summation order keeps the figures reproducible.
    with threadpool_limits(1):
        return _train(examples, target_precision)


def _train(examples: list[Example], target_precision: float) -> Trained:
    if len({e.category for e in examples}) != len(CLASSES):
        missing = set(CLASSES) - {e.category for e in examples}
        raise CorpusError(f"every class needs examples; none for {', '.join(sorted(missing))}")
    texts = [model_text(e.title, e.text) for e in examples]
    labels = np.array([e.category for e in examples])
    held_out = np.array([is_held_out(e) for e in examples])
    train_i, test_i = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    for category in CLASSES:
        if (labels[test_i] == category).sum() < 2 or (labels[train_i] == category).sum() < 5:
            raise CorpusError(f"too few {category} examples to train and hold some out: add more")
    train_texts, train_labels = [texts[i] for i in train_i], labels[train_i]

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    out_of_fold = cross_val_predict(new_pipeline(), train_texts, train_labels, cv=folds, method="predict_proba")
    threshold = choose_threshold(train_labels != BENIGN, 1.0 - out_of_fold[:, CLASSES.index(BENIGN)],
                                 target_precision)

    pipeline = new_pipeline().fit(train_texts, train_labels)
    test_texts = [texts[i] for i in test_i]
    metrics = held_out_metrics(labels[test_i] != BENIGN, violation_scores(pipeline, test_texts), threshold)
    metadata = Metadata(version=model_version(examples, pipeline), threshold=round(threshold, 6),
                        target_precision=target_precision, metrics=metrics,
                        sklearn_version=sklearn.__version__, examples=len(examples))
    counts = {"languages": dict(sorted(Counter(e.language or "?" for e in examples).items())),
              "classes": dict(sorted(Counter(e.category for e in examples).items())),
              "sources": dict(sorted(Counter(e.source for e in examples).items()))}
    return Trained(pipeline, metadata, [examples[i] for i in test_i], counts)


def evaluate(classifier: Classifier, held_out: list[Example]) -> dict:
    """An installed model's figures on a held-out split, at its own threshold."""
    texts = [model_text(e.title, e.text) for e in held_out]
    y = np.array([e.category != BENIGN for e in held_out])
    return held_out_metrics(y, violation_scores(classifier.pipeline, texts), classifier.metadata.threshold)


def compare(new: dict, current: dict, target_precision: float) -> list[str]:
    """Why the new model is worse than the current one on the same held-out split (empty: it is not)."""
    reasons = []
    if new["roc_auc"] < current["roc_auc"] - AUC_TOLERANCE:
        reasons.append(f"ROC AUC {new['roc_auc']} < current {current['roc_auc']}")
    if new["precision"] < target_precision <= current["precision"]:
        reasons.append(f"precision at the threshold {new['precision']} misses the target {target_precision}, "
                       f"the current model's {current['precision']} does not")
    return reasons


def current_model(directory: Path) -> Classifier | None:
    try:
        return Classifier.load(directory)
    except ModelError:
        return None


def install(trained: Trained, directory: Path = MODEL_DIR) -> None:
    """Write the model and its metadata; the metadata last, so a reader never sees a version without its file."""
    directory.mkdir(parents=True, exist_ok=True)
    vectorizer = trained.pipeline[0]
    # numpy integers would be stored one file each in the skops archive; plain ints are one JSON object
    vectorizer.vocabulary_ = {gram: int(index) for gram, index in vectorizer.vocabulary_.items()}
    skops.io.dump(trained.pipeline, directory / MODEL_FILE, compression=8)
    (directory / META_FILE).write_text(trained.metadata.to_json(), encoding="utf-8")
