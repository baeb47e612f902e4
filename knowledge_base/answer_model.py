"""The learned answerability model: a logistic regression over a few signals of the retrieved passages.

``AnswerModel`` is data (``answer_model.json`` beside this file): the features it reads, their mean
and scale, the weights, the intercept, the probability ``threshold`` from which the FAQ answers, and
the embedder it was fitted with (the cosine features are only comparable within one embedding model).
Applying it is a dot product; scikit-learn is needed only to fit it.

Fitting (``fit``) is reproducible and chooses nothing by hand:

- the weights: L2-regularised logistic regression on standardised features, classes balanced;
- the threshold: from out-of-fold probabilities (repeated stratified k-fold over the labelled
  questions), the lowest probability at which at least ``target`` of the unanswerable questions are
  declined. Choosing it on out-of-fold rather than in-sample probabilities keeps it from being tuned to
  questions the weights have already seen;
- ``cross_validate`` repeats the whole procedure (weights and threshold) inside each training fold and
  measures the held-back fold: the out-of-sample decline rates.

A question can lack a feature: ``precedent`` says nothing when the labelled questions were labelled
against other passages than its hits (an article added or edited since) or when a shop turns them
off. Such a question is not scored as if the feature were 0 (it is not neutral: most answerable
questions have a positive precedent), but by ``fallback``, the same fitting without that feature
(``OPTIONAL``), with its own weights and threshold (``for_values`` picks the model).

``python -m evals.bench_retrieval --fit --target T`` runs it on knowledge_base/questions with the real
embedder and writes the file (with the cross-validated rates in ``about``); ``python -m
evals.bench_retrieval`` measures the fitted model in sample, cross-validated and on held-out questions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.errors import KnowledgeBaseError

MODEL_FILE = Path(__file__).parent / "answer_model.json"
# what knowledge_base.answerable.evidence measures
FEATURES = ("similarity", "sentence", "missing", "aligned", "precedent")
OPTIONAL = ("precedent",)  # features a question may lack (``AnswerModel.fallback`` decides without them)
SEEDS = (0, 1, 2)  # repeats of the k-fold split: out-of-fold probabilities averaged over them
FOLDS = 5
C = 1.0  # inverse L2 strength (scikit-learn's default): no search, so nothing is tuned on the test folds


@dataclass(frozen=True)
class AnswerModel:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    threshold: float  # answer when the probability is at least this
    embedder: str  # the embedding model the cosine features came from
    about: dict[str, Any] = field(default_factory=dict)  # how it was fitted, and what it measured
    fallback: AnswerModel | None = None  # the same fitting without the ``OPTIONAL`` features

    def for_values(self, values: Mapping[str, float]) -> AnswerModel:
        """The model that reads exactly what ``values`` has: this one, or its fallback when an optional
        feature is missing. Without a fallback (a model file of before) ``probability`` takes a missing
        feature at its mean (no evidence either way)."""
        if self.fallback is not None and any(f not in values for f in self.features):
            return self.fallback.for_values(values)
        return self

    def probability(self, values: Mapping[str, float]) -> float:
        """Of the features this model reads; an ``OPTIONAL`` one missing from ``values`` is taken at its mean
        (``for_values`` first finds the model fitted without it), a missing required one is an error."""
        z = self.intercept + sum(w * (values[f] - m) / s for f, m, s, w in
                                 zip(self.features, self.mean, self.scale, self.weights, strict=True)
                                 if f in values or f not in OPTIONAL)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def answers(self, values: Mapping[str, float]) -> bool:
        return self.probability(values) >= self.threshold

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> AnswerModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KnowledgeBaseError(f"answerability model {path} unreadable ({exc}); write it with "
                                     "`python -m evals.bench_retrieval --fit`") from exc
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise KnowledgeBaseError(f"answerability model {path} malformed ({exc!r}); write it with "
                                     "`python -m evals.bench_retrieval --fit`") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerModel:
        fallback = data.get("fallback")
        model = cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]),
                    float(data["intercept"]), float(data["threshold"]), str(data["embedder"]), data.get("about", {}),
                    cls.from_dict(fallback) if fallback else None)
        if not len(model.features) == len(model.mean) == len(model.scale) == len(model.weights):
            raise ValueError("features, mean, scale and weights differ in length")
        return model

    def save(self, path: Path = MODEL_FILE) -> None:
        data = asdict(self)
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _matrix(rows: Sequence[Mapping[str, float]], features: Sequence[str]) -> np.ndarray:
    return np.array([[float(r[f]) for f in features] for r in rows], dtype=np.float64).reshape(len(rows), len(features))


def _fit_weights(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
    return mean, scale, lr.coef_[0], float(lr.intercept_[0])


def _probabilities(x: np.ndarray, fitted: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> np.ndarray:
    mean, scale, weights, intercept = fitted
    return 1.0 / (1.0 + np.exp(-(intercept + ((x - mean) / scale) @ weights)))


def out_of_fold(x: np.ndarray, y: np.ndarray, seeds: Sequence[int] = SEEDS, folds: int = FOLDS) -> np.ndarray:
    """Each question's probability from models fitted without it, averaged over the repeated splits."""
    from sklearn.model_selection import StratifiedKFold

    folds = max(2, min(folds, int(y.sum()), int((~y).sum())))
    out = np.zeros((len(seeds), len(y)))
    for n, seed in enumerate(seeds):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            out[n, test] = _probabilities(x[test], _fit_weights(x[train], y[train]))
    return out.mean(0)


def lowest_threshold(probability: np.ndarray, answerable: np.ndarray, target: float) -> float:
    """A threshold that declines (probability below it) at least ``target`` of the unanswerable questions:
    halfway between the probability of the last one it must decline and the next, so that the fewest
    answerable questions are declined without resting on one question's exact value."""
    negatives = np.sort(probability[~answerable])
    if len(negatives) == 0:
        return 0.5
    k = math.ceil(target * len(negatives) - 1e-9)
    if k <= 0:
        return 0.0
    above = negatives[k:]  # the middle between the k-th and the next, so a tie does not decide
    return float(negatives[k - 1] + (above[0] - negatives[k - 1]) / 2 if len(above) else negatives[-1] + 1e-6)


def _floored(probability: np.ndarray, rows: Sequence[Mapping[str, float]], floor: float) -> np.ndarray:
    """Probability 0 where the best cosine is under the rule's floor: declined whatever the model says."""
    below = np.array([r["similarity"] < floor for r in rows], dtype=bool)
    return np.where(below, 0.0, probability)


def fit(rows: Sequence[Mapping[str, float]], answerable: Sequence[bool], embedder: str, target: float = 0.9,
        floor: float = 0.0, features: Sequence[str] = FEATURES, about: dict[str, Any] | None = None,
        fallback_target: float | None = None) -> AnswerModel:
    """Weights on all the questions; the threshold on their out-of-fold probabilities (see the module doc),
    counting the questions under the cosine ``floor`` as declined (the rule declines them first). When
    ``features`` has optional ones, the ``fallback`` is fitted the same way without them, its threshold
    declining ``fallback_target`` (default ``target``) of the unanswerable questions, and cross-validated
    (its ``about``)."""
    x, y = _matrix(rows, features), np.asarray(answerable, dtype=bool)
    threshold = lowest_threshold(_floored(out_of_fold(x, y), rows, floor), y, target)
    mean, scale, weights, intercept = _fit_weights(x, y)
    fallback = None
    required = [f for f in features if f not in OPTIONAL]
    if 0 < len(required) < len(features):  # a model of optional features alone has nothing to fall back on
        aim = target if fallback_target is None else fallback_target
        fallback = fit(rows, answerable, embedder, aim, floor, required, about={
            "without": [f for f in features if f in OPTIONAL], "target": aim,
            "cross_validation": cross_validate(rows, answerable, aim, floor, required)})
    return AnswerModel(tuple(features), tuple(round(float(v), 6) for v in mean),
                       tuple(round(float(v), 6) for v in scale), tuple(round(float(v), 6) for v in weights),
                       round(intercept, 6), round(threshold, 6), embedder, dict(about or {}), fallback)


def cross_validate(rows: Sequence[Mapping[str, float]], answerable: Sequence[bool], target: float = 0.9,
                   floor: float = 0.0, features: Sequence[str] = FEATURES, folds: int = FOLDS,
                   seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """Out-of-sample rates of the whole fitting procedure: ``fit`` on k-1 folds (its threshold from
    out-of-fold probabilities within them), measured on the held-back fold; repeated over ``seeds``."""
    from sklearn.model_selection import StratifiedKFold

    x, y = _matrix(rows, features), np.asarray(answerable, dtype=bool)
    declined, false = [], []
    for seed in seeds:
        split = StratifiedKFold(folds, shuffle=True, random_state=100 + seed)
        for train, test in split.split(x, y):
            inner = _floored(out_of_fold(x[train], y[train], seeds=(seed,)), [rows[i] for i in train], floor)
            threshold = lowest_threshold(inner, y[train], target)
            probability = _floored(_probabilities(x[test], _fit_weights(x[train], y[train])),
                                   [rows[i] for i in test], floor)
            accept = probability >= threshold
            declined += list(~accept[~y[test]])
            false += list(~accept[y[test]])
    return {"folds": folds, "repeats": len(seeds), "target": target, "floor": floor,
            "declined_unanswerable": round(float(np.mean(declined)), 4) if declined else 0.0,
            "false_declines": round(float(np.mean(false)), 4) if false else 0.0}
