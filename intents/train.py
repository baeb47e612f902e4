"""Training the intent head: embed once, cross-validate, calibrate, fit on everything, save with metadata.

Two heads share one recipe (``HeadConfig``): the baseline reads MiniLM embeddings only; the kept
model (``DEFAULT``) also reads TF-IDF character and word n-grams (``intents.lexical``), which
cross-validation and the independent test split both favour (numbers in the saved metadata and in
``evals/bench_intents.py``). Steps:

1. embed the training examples (the shared encoder; nothing is fine-tuned);
2. k-fold cross-validation on the training data -> out-of-fold logits (the validation data);
3. fit the softmax temperature and choose the router's gates on those (``intents.calibration``);
4. fit the head on all examples and save it with labels, base model, data hash, metrics, thresholds;
5. score the held-out split (``intents/testset``) once, for the record: it never feeds back into 1-4.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from intents.calibration import choose_gate, fit_temperature
from intents.classifier import EmbeddingClassifier, TextEncoder, prediction_from, softmax
from intents.dataset import Example, data_hash, load_heldout, load_training_data
from intents.lexical import LexicalFeaturizer, load_business_names
from intents.metrics import Gate, evaluate


@dataclass(frozen=True)
class HeadConfig:
    kind: str = "embedding+lexical"  # or "embedding" (the baseline)
    c: float = 10.0  # inverse L2 strength of the logistic regression
    char_weight: float = 1.0  # scale of the character n-gram block (each block is l2-normalised)
    word_weight: float = 1.0
    min_df: int = 2  # n-grams seen in fewer training examples are dropped
    business_names: bool = True  # map other businesses' names to one token (intents/lexicon)

    def __post_init__(self) -> None:
        if self.kind not in ("embedding", "embedding+lexical"):
            raise ValueError(f"unknown head kind {self.kind!r}: embedding or embedding+lexical")


BASELINE = HeadConfig(kind="embedding", c=10.0)
DEFAULT = HeadConfig()


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    n_examples: int
    labels: tuple[str, ...]
    heldout_route_accuracy: float | None
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)


def fit_head(x: np.ndarray, texts: Sequence[str], y: np.ndarray, n_labels: int,
             config: HeadConfig) -> tuple[np.ndarray, np.ndarray, LexicalFeaturizer | None, np.ndarray | None]:
    """(embedding weights, intercept, lexical featurizer, lexical weights) of one logistic regression."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression  # heavy; only when training
    from threadpoolctl import threadpool_limits

    lexical = None
    features: Any = x
    if config.kind == "embedding+lexical":
        names = load_business_names() if config.business_names else ()
        lexical = LexicalFeaturizer.fit(texts, config.char_weight, config.word_weight, config.min_df, names)
        features = sparse.hstack([sparse.csr_matrix(x), lexical.transform(texts)]).tocsr()
    # one BLAS thread: on a small problem, thread hand-offs cost more than they save (25x on 2 cores)
    with threadpool_limits(limits=1):
        head = LogisticRegression(C=config.c, max_iter=3000, class_weight="balanced").fit(features, y)
    if len(head.classes_) != n_labels:
        raise ValueError("every intent needs training examples in every fold")
    coef = head.coef_.astype(np.float64)
    dim = x.shape[1]
    return (coef[:, :dim].copy(), head.intercept_.astype(np.float64), lexical,
            coef[:, dim:].copy() if lexical is not None else None)


def out_of_fold_logits(x: np.ndarray, texts: Sequence[str], y: np.ndarray, n_labels: int, config: HeadConfig,
                       folds: int = 5, seed: int = 0, tick: Callable[[], None] = lambda: None) -> np.ndarray:
    """Logits of every training example from a head that did not see it (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold

    logits = np.zeros((len(texts), n_labels))
    for train_idx, val_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        coef, intercept, lexical, lexical_coef = fit_head(x[train_idx], [texts[i] for i in train_idx],
                                                          y[train_idx], n_labels, config)
        z = x[val_idx] @ coef.T + intercept
        if lexical is not None:
            z = z + np.asarray(lexical.transform([texts[i] for i in val_idx]) @ lexical_coef.T)
        logits[val_idx] = z
        tick()
    return logits


def train(encoder: TextEncoder, model_dir: Path, base_model: str = "",
          examples: list[Example] | None = None, config: HeadConfig = DEFAULT, folds: int = 5,
          progress: Callable[[str], None] = print, show_progress: bool = False,
          heldout: list[Example] | None = None) -> TrainResult:
    """Train, calibrate and save. ``heldout`` defaults to the test split minus training overlaps."""
    from tqdm import tqdm

    started = time.perf_counter()
    examples = examples if examples is not None else load_training_data()
    labels = sorted({e.intent for e in examples})
    texts = [e.text for e in examples]
    y = np.array([labels.index(e.intent) for e in examples])
    # steps: embed, each fold, calibrate, final fit, held-out + save
    bar = tqdm(total=folds + 4, desc="training intents", unit="step", disable=not show_progress)
    if show_progress:  # messages above the bar instead of through it
        progress = bar.write

    progress(f"embedding {len(examples)} examples over {len(labels)} intents ({config.kind} head)")
    x = encoder.embed(texts).astype(np.float64)
    bar.update(1)

    progress(f"{folds}-fold cross-validation for calibration")
    oof = out_of_fold_logits(x, texts, y, len(labels), config, folds, tick=lambda: bar.update(1))
    temperature = fit_temperature(oof, y)
    oof_probs = softmax(oof / temperature)
    routes = [e.route for e in examples]
    gate, thresholds = choose_gate(oof_probs, labels, routes)
    oof_preds = [prediction_from(labels, p) for p in oof_probs]
    cv = evaluate(oof_preds, routes, gate)
    bar.update(1)

    coef, intercept, lexical, lexical_coef = fit_head(x, texts, y, len(labels), config)
    meta: dict[str, Any] = {
        "base_model": base_model,
        "data_hash": data_hash(examples),
        "n_examples": len(examples),
        "head": {"type": "logistic_regression", **asdict(config)},
        "thresholds": thresholds,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": {"cross_validation": cv},
    }
    model = EmbeddingClassifier(encoder, labels, coef, intercept, meta, lexical, lexical_coef, temperature)
    bar.update(1)

    heldout = heldout if heldout is not None else load_heldout(exclude=examples)
    accuracy = None
    if heldout:
        preds = model.classify_batch([e.text for e in heldout])
        test = evaluate(preds, [e.route for e in heldout], gate)
        accuracy = test["accuracy"]
        model.meta["metrics"]["heldout"] = test
        progress(f"held-out: route macro-F1 {test['macro_f1']:.3f}, accuracy {accuracy:.3f} on {len(heldout)} "
                 f"messages; out-of-scope recall {test['gate']['oos_recall']:.3f}, in-scope rejected "
                 f"{test['gate']['in_scope_rejected']:.3f}")
    model.save(model_dir)
    bar.update(1)
    bar.close()
    return TrainResult(model_dir, len(examples), tuple(labels), accuracy, time.perf_counter() - started,
                       model.meta["metrics"], thresholds)


def model_is_current(model_dir: Path, examples: list[Example] | None = None,
                     config: HeadConfig = DEFAULT) -> bool:
    """A saved model exists and was trained on these examples with this head (else retrain)."""
    import json

    meta_path = model_dir / "meta.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    examples = examples if examples is not None else load_training_data()
    return meta.get("data_hash") == data_hash(examples) and meta.get("head", {}).get("kind") == config.kind


def gate_of(meta: dict) -> Gate:
    t = meta.get("thresholds") or {}
    return Gate(float(t.get("confidence_min", 0.0)), float(t.get("margin_min", 0.0)))

