"""What content checks cost per item, in-process: folding, the classifier's `score`, a PDQ hash.

No stack: these run where content arrives, so their cost is CPU time per item.
Every seed-corpus example is scored `rounds` times after one warm-up pass; the
figures are per call (p50 and p99 over the rounds' per-example means, and the
mean over all calls).
"""
from __future__ import annotations

import statistics
import time


def _per_call_us(fn, items: list, rounds: int) -> dict:
    for item in items:
        fn(item)
    samples = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter_ns()
            fn(item)
            samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return {"calls": len(samples), "mean_us": round(statistics.fmean(samples), 1),
            "p50_us": round(samples[len(samples) // 2], 1), "p99_us": round(samples[int(len(samples) * 0.99)], 1)}


def run(rounds: int = 20) -> dict:
    import numpy as np
    from PIL import Image

    from moderation.classifier import Classifier
    from moderation.classifier.training import read_corpus
    from moderation.folding import fold
    from moderation.media import pdq_hash

    started = time.perf_counter()
    classifier = Classifier.load()
    load_ms = round((time.perf_counter() - started) * 1000, 1)
    examples = [(e.title, e.text) for e in read_corpus()]
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(5)]
    return {
        "model_version": classifier.version,
        "load_ms": load_ms,
        "fold": _per_call_us(lambda e: fold(f"{e[0]} {e[1]}"), examples, rounds),
        "score": _per_call_us(lambda e: classifier.score(*e), examples, rounds),
        "pdq_640x480": _per_call_us(pdq_hash, images, max(1, rounds // 4)),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
