"""Training the intent head: embed the examples once, fit a logistic regression, save with metadata.

Issue 3 grows this (stronger options, calibration, the report); the save format stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from intents.classifier import EmbeddingClassifier, TextEncoder
from intents.dataset import Example, data_hash, load_heldout, load_training_data


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    n_examples: int
    labels: tuple[str, ...]
    heldout_route_accuracy: float | None
    seconds: float


def train(encoder: TextEncoder, model_dir: Path, base_model: str = "",
          examples: list[Example] | None = None, c: float = 10.0,
          progress: Callable[[str], None] = print) -> TrainResult:
    from sklearn.linear_model import LogisticRegression  # heavy; only when training

    started = time.perf_counter()
    examples = examples if examples is not None else load_training_data()
    labels = sorted({e.intent for e in examples})
    progress(f"embedding {len(examples)} examples over {len(labels)} intents")
    x = encoder.embed([e.text for e in examples])
    y = np.array([labels.index(e.intent) for e in examples])
    head = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    head.fit(x, y)
    meta: dict[str, Any] = {
        "base_model": base_model,
        "data_hash": data_hash(examples),
        "n_examples": len(examples),
        "head": {"type": "logistic_regression", "C": c},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model = EmbeddingClassifier(encoder, labels, head.coef_.astype(np.float64),
                                head.intercept_.astype(np.float64), meta)
    heldout = load_heldout(exclude=examples)
    accuracy = None
    if heldout:
        preds = model.classify_batch([e.text for e in heldout])
        accuracy = float(np.mean([p.route == e.route for p, e in zip(preds, heldout, strict=True)]))
        model.meta["metrics"] = {"heldout_route_accuracy": accuracy, "heldout_n": len(heldout)}
        progress(f"held-out route accuracy {accuracy:.3f} on {len(heldout)} messages")
    model.save(model_dir)
    return TrainResult(model_dir, len(examples), tuple(labels), accuracy, time.perf_counter() - started)
