"""The content classifier: the shipped model, its training rules, and `warden moderation train|classify`."""
import json
import shutil
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.classifier import CLASSES, Classifier, ModelError
from moderation.classifier.model import MAX_FIELD_CHARS, MODEL_DIR, model_text
from moderation.classifier.training import (CorpusError, Example, choose_threshold, compare, inputs_digest, is_held_out, read_corpus,
                                            read_decisions)
from moderation.folding import fold
from warden.cli.main import cli

CLASSIFIER = Classifier.load()
CORPUS = read_corpus()


def test_the_shipped_model_was_trained_on_the_corpus_as_it_is():
    """Editing the seed corpus without `warden moderation train` leaves a stale model: this fails."""
    assert CLASSIFIER.version.startswith(f"charlr-{inputs_digest(CORPUS)}-")
    assert CLASSIFIER.metadata.target_precision == 0.95
    assert (MODEL_DIR / "classifier.skops").stat().st_size < 3_000_000


def test_the_seed_corpus_covers_ten_languages_every_category_and_hard_negatives():
    languages = Counter(e.language for e in CORPUS)
    assert {"en", "ru", "uk", "fr", "de", "es", "pt", "ar", "fa", "tr"} <= set(languages)
    for language in languages:
        categories = {e.category for e in CORPUS if e.language == language}
        assert len(categories) >= 6, (language, categories)
    rows = [json.loads(line) for line in (MODEL_DIR.parent / "corpus" / "seed.jsonl").read_text().splitlines()]
    assert sum(r["category"] == "hard_negative" for r in rows) >= 50
    assert len(rows) >= 400


@pytest.mark.parametrize("title, text, category", [
    ("c-o-c-a-i-n-e", "", "drugs"),
    ("koks kaufen", "", "drugs"),
    ("кокаин купить", "", "drugs"),
    ("Glock 19 for sale", "", "weapons"),
    ("\u0412uy \u0441\u043e\u0441\u0430\u0456n\u0435", "fast delivery", "drugs"),     # Cyrillic look-alikes
    ("ar15 for sale", "no paperwork", "weapons"),
    ("Fresh c0ca1ne and w33d", "delivered in 30 minutes, pay in crypto", "drugs"),
    ("Hack any WhatsApp", "results in one day", "hacking"),
])
def test_the_issues_evasions_score_as_violations_of_their_category(title, text, category):
    s = CLASSIFIER.score(title, text)
    assert s.label == category
    assert s.score >= 0.5
    assert s.version == CLASSIFIER.version


@pytest.mark.parametrize("title, text", [
    ("Knitting club", "We knit every Tuesday at the library"),
    ("Pharmacy on Main Street", "Open until 9 pm, prescriptions and flu shots"),
    ("Hunting association", "Annual meeting and licence checks on Sunday"),
    ("Bitcoin price today", "Crypto markets fell after the central bank decision"),
    ("Police seize heroin at the border", "Two men were arrested, the drugs were destroyed"),
    ("Аптека на Садовой", "Лекарства по рецепту, открыто до 22:00"),
])
def test_lawful_content_near_the_vocabulary_is_not_delisted(title, text):
    """Not delisted automatically (a human may still see such an item in the queue)."""
    s = CLASSIFIER.score(title, text)
    assert not s.delist and s.score < CLASSIFIER.metadata.threshold


def test_top_features_are_words_of_the_folded_text():
    s = CLASSIFIER.score("C-O-C-A-I-N-E delivery", "fresh coke, pay in crypto")
    assert s.top_features and set(s.top_features) <= set(fold("C-O-C-A-I-N-E delivery fresh coke, pay in crypto")
                                                          .split())
    assert "cocaine" in s.top_features


def test_scoring_gives_scikit_learns_own_probabilities():
    texts = [(e.title, e.text) for e in CORPUS[::7]] + [("", ""), ("💊💊", None)]
    expected = CLASSIFIER.pipeline.predict_proba([model_text(t, x) for t, x in texts])
    got = np.array([CLASSIFIER.probabilities(t, x) for t, x in texts])
    assert np.allclose(got, expected, atol=1e-9)


@given(st.text(max_size=200), st.text(max_size=200))
@settings(max_examples=100, deadline=None)
def test_any_text_gets_a_score_between_0_and_1(title, text):
    s = CLASSIFIER.score(title, text)
    assert 0.0 <= s.score <= 1.0 and s.label in CLASSES


def test_an_oversized_description_costs_no_more_than_its_first_characters():
    junk = "".join(chr(0x400 + i % 200) + chr(0x61 + i % 26) for i in range(200_000))
    assert CLASSIFIER.score("c-o-c-a-i-n-e", junk) == CLASSIFIER.score("c-o-c-a-i-n-e", junk[:MAX_FIELD_CHARS])


def test_a_model_file_that_is_not_a_model_is_refused(tmp_path):
    shutil.copy(MODEL_DIR / "classifier.json", tmp_path)
    (tmp_path / "classifier.skops").write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelError):
        Classifier.load(tmp_path)
    with pytest.raises(ModelError, match="warden moderation train"):
        Classifier.load(tmp_path / "missing")


def test_the_threshold_is_the_lowest_score_that_reaches_the_precision():
    y = np.array([False, False, True, False, True, True, True])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert choose_threshold(y, scores, 0.95) == 0.5      # 0.5, 0.6, 0.7 are all violations
    assert choose_threshold(y, scores, 0.75) == 0.3      # 4 of the 5 from 0.3 up
    assert choose_threshold(y, scores, 0.5) == 0.1       # 4/7 >= 0.5 from the bottom
    assert choose_threshold(np.array([False, False]), np.array([0.9, 0.95]), 0.95) == 1.0   # never


def test_about_a_quarter_of_each_class_is_held_out_and_an_example_never_changes_side():
    for category in CLASSES:
        examples = [e for e in CORPUS if e.category == category]
        share = sum(map(is_held_out, examples)) / len(examples)
        assert 0.1 <= share <= 0.45, (category, share)
    before = [is_held_out(e) for e in CORPUS]
    grown = read_corpus() + [Example(f"new {i}", "", "drugs") for i in range(50)]
    assert [is_held_out(e) for e in grown[:len(CORPUS)]] == before


def test_a_model_with_lower_auc_or_that_loses_the_precision_target_is_worse():
    current = {"roc_auc": 0.95, "precision": 0.96}
    assert compare({"roc_auc": 0.951, "precision": 0.97}, current, 0.95) == []
    assert compare({"roc_auc": 0.947, "precision": 0.96}, current, 0.95) == []          # inside the tolerance
    assert compare({"roc_auc": 0.93, "precision": 0.96}, current, 0.95)
    assert compare({"roc_auc": 0.96, "precision": 0.90}, current, 0.95)
    assert compare({"roc_auc": 0.96, "precision": 0.90}, {"roc_auc": 0.95, "precision": 0.9}, 0.95) == []


def test_decisions_become_examples_and_out_of_scope_categories_are_counted(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in [
        {"title": "Fresh weed", "text": "", "action": "delist", "category": "drugs"},
        {"title": "Knitting", "text": "club", "action": "keep"},
        {"title": "Relisted", "text": "", "action": "restore"},
        {"title": "x", "text": "", "action": "delist", "category": "child_abuse"},
    ]) + "\n")
    examples, skipped = read_decisions(path)
    assert [e.category for e in examples] == ["drugs", "benign", "benign"] and skipped == 1
    path.write_text('{"title": "x", "action": "maybe"}\n')
    with pytest.raises(CorpusError, match=r"decisions.jsonl:1: action"):
        read_decisions(path)


def test_classify_prints_one_line_per_input_line_in_order(tmp_path):
    lines = ['{"title": "Glock 19 for sale", "text": ""}', '{"title": "Knitting club", "text": "Tuesdays"}',
             "not json", '{"title": ["x"]}', '{"title": "кокаин купить"}']
    result = CliRunner().invoke(cli, ["moderation", "classify", "-"], input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("label") for o in out] == ["weapons", "benign", None, None, "drugs"]
    assert [o.get("line") for o in out] == [None, None, 3, 4, None]
    assert all(o["model_version"] == CLASSIFIER.version and 0 <= o["score"] <= 1 for o in out if "score" in o)


def test_training_is_deterministic_and_reports_its_figures(tmp_path):
    result = CliRunner().invoke(cli, ["moderation", "train", "--model-dir", str(tmp_path / "model"),
                                      "--write-held-out", str(tmp_path / "held_out.jsonl")])
    assert result.exit_code == 0, result.output
    assert "ROC AUC" in result.output and "precision at the threshold" in result.output
    retrained = Classifier.load(tmp_path / "model")
    assert retrained.version == CLASSIFIER.version
    assert retrained.metadata == CLASSIFIER.metadata
    held_out = (tmp_path / "held_out.jsonl").read_text().splitlines()
    assert len(held_out) == CLASSIFIER.metadata.metrics["examples"]
    first = json.loads(held_out[0])
    assert retrained.score(first["title"], first["text"]) == CLASSIFIER.score(first["title"], first["text"])


def test_training_refuses_a_model_worse_than_the_current_one(tmp_path):
    """Poisoned decisions: every drug and weapon listing 'kept', every ordinary item 'delisted as drugs'."""
    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model_dir)
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    poison = []
    for e in CORPUS:
        if e.category in ("drugs", "weapons"):
            poison.append({"title": e.title, "text": e.text, "action": "keep"})
        elif e.category == "benign":
            poison.append({"title": e.title, "text": e.text, "action": "delist", "category": "drugs"})
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text("".join(json.dumps(d) + "\n" for d in poison))
    result = CliRunner().invoke(cli, ["moderation", "train", "--model-dir", str(model_dir),
                                      "--decisions", str(decisions)])
    assert result.exit_code != 0
    assert "not installed, worse than the current model" in result.output
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before
