"""`warden moderation train|classify|hash`: the content classifier and media hashes, offline.

Moderation's own modules are imported inside each command: scikit-learn and the
image libraries load only for the command that needs them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def moderation() -> None:
    """Train and run the content classifier; hash images for the media banks."""


@moderation.command("train")
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="labelled examples (default: the seed corpus shipped with Warden)")
@click.option("--decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="moderators' recorded decisions, JSON lines: title, text, action (delist|keep|restore), category")
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path),
              help="where the model is installed (default: inside the moderation package)")
@click.option("--precision", "target_precision", type=click.FloatRange(0.5, 1.0), default=0.95, show_default=True,
              help="the precision the delist threshold is chosen for")
@click.option("--force", is_flag=True, help="install even if the current model does better on the held-out split")
@click.option("--dry-run", is_flag=True, help="train and report, install nothing")
@click.option("--write-held-out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the held-out split here (JSON lines), for `warden moderation classify`")
def train_command(corpus: Path | None, decisions: Path | None, model_dir: Path | None, target_precision: float,
                  force: bool, dry_run: bool, write_held_out: Path | None) -> None:
    """Train on the corpus (and decisions), report held-out figures, install unless worse than the current model."""
    from moderation.classifier import training
    from moderation.classifier.model import MODEL_DIR

    model_dir = model_dir or MODEL_DIR
    try:
        examples = training.read_corpus(corpus or training.SEED_CORPUS)
        skipped = 0
        if decisions:
            from_decisions, skipped = training.read_decisions(decisions)
            examples += from_decisions
        trained = training.train(examples, target_precision)
    except training.CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    meta, new = trained.metadata, trained.metadata.metrics
    click.echo(f"examples: {meta.examples} {json.dumps(trained.counts, sort_keys=True)}")
    if skipped:
        click.echo(f"decisions left out (a category the classifier does not model): {skipped}")
    click.echo(f"model {meta.version}: held-out split of {new['examples']} ({new['violations']} violations)")
    click.echo(f"  ROC AUC {new['roc_auc']:.4f}")
    click.echo(f"  delist threshold {new['threshold']:.4f} (chosen for precision >= {target_precision} "
               f"on out-of-fold training scores)")
    click.echo(f"  precision at the threshold {new['precision']:.4f}, recall {new['recall']:.4f}")
    if write_held_out:
        write_held_out.write_text("".join(json.dumps(e.__dict__, ensure_ascii=False) + "\n"
                                          for e in trained.held_out), encoding="utf-8")
        click.echo(f"held-out split written to {write_held_out}")

    current = training.current_model(model_dir)
    if current is not None:
        before = training.evaluate(current, trained.held_out)
        click.echo(f"current model {current.version} on the same split: ROC AUC {before['roc_auc']:.4f}, "
                   f"precision {before['precision']:.4f}, recall {before['recall']:.4f}")
        reasons = training.compare(new, before, target_precision)
        if reasons and not force:
            raise click.ClickException("not installed, worse than the current model: " + "; ".join(reasons))
        if reasons:
            click.echo("worse than the current model (" + "; ".join(reasons) + "), installed anyway (--force)")
    if dry_run:
        click.echo("dry run: nothing installed")
        return
    training.install(trained, model_dir)
    click.echo(f"installed {meta.version} in {model_dir}")


@moderation.command("classify")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path),
              help="the model to use (default: the one inside the moderation package)")
def classify_command(file, model_dir: Path | None) -> None:
    """Score each JSON line of FILE (`title`, `text`; `-` for stdin): one JSON line out per line in, in order.

    A line that cannot be read gets {"line": N, "error": ...} in its place; the
    command then goes on and exits with status 1 at the end.
    """
    from moderation.classifier import Classifier, ModelError
    from moderation.classifier.model import MODEL_DIR

    try:
        classifier = Classifier.load(model_dir or MODEL_DIR)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    failed = 0
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        error = None
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            row, error = None, f"not JSON ({exc.msg})"
        if row is not None and not isinstance(row, dict):
            error = "not a JSON object"
        elif row is not None:
            title, text = row.get("title"), row.get("text")
            if not all(v is None or isinstance(v, str) for v in (title, text)):
                error = "title and text must be strings"
        if error:
            failed += 1
            click.echo(json.dumps({"line": number, "error": error}))
            continue
        s = classifier.score(title, text)
        click.echo(json.dumps({"score": s.score, "label": s.label, "delist": s.delist, "model_version": s.version,
                               "top_features": list(s.top_features)}, ensure_ascii=False))
    if failed:
        click.echo(f"{failed} line(s) could not be read", err=True)
        sys.exit(1)


@moderation.command("hash")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bank", "banks", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a bank of known-bad PDQ hashes (CSV, as `warden moderation hash` prints or ThreatExchange/HMA "
                   "export); matches are printed after each hash")
@click.option("--distance", type=click.IntRange(0, 256), default=31, show_default=True,
              help="the largest Hamming distance that counts as a match")
def hash_command(images: tuple[Path, ...], banks: tuple[Path, ...], distance: int) -> None:
    """Print each image's PDQ hash and quality as `hash,quality,path` (the reference hasher's CSV lines)."""
    from moderation.media import MediaError, load_bank, pdq_hash

    try:
        loaded = [load_bank(path, max_distance=distance) for path in banks]
    except MediaError as exc:
        raise click.ClickException(str(exc)) from None
    failed = 0
    for path in images:
        try:
            found = pdq_hash(path)
        except MediaError as exc:
            failed += 1
            click.echo(f"{path}: {exc}", err=True)
            continue
        click.echo(f"{found.hex},{found.quality},{path}")
        for bank in loaded:
            for match in bank.match(found):
                click.echo(f"  match bank={match.bank_id} entry={match.entry_id} distance={match.distance}")
    if failed:
        sys.exit(1)
