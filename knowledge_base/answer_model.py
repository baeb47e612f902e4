"""The learned answerability model: a logistic regression over a few signals of the retrieved passages.

``AnswerModel`` is data (``answer_model.json`` beside this file): the features it reads, their mean
and scale, the weights, the intercept, the probability ``threshold`` from which the FAQ answers, and
the embedder it was fitted with (the cosine features are only comparable within one embedding model).
Applying it is a dot product; scikit-learn is needed only to fit it.

Fitting (``fit``) is reproducible and chooses nothing by hand:

- the weights: L2-regularised logistic regression on standardised features, classes balanced;
- the threshold: from out-of-fold probabilities, the lowest probability at which at least ``target`` of
  the unanswerable questions are declined. Choosing it on out-of-fold rather than in-sample
  probabilities keeps it from being tuned to questions the weights have already seen. The folds are the
  writers (``Writers``: each labelled set was written by one person; at least ``MIN_WRITERS`` of them):
  each writer's questions are scored by a model fitted on the other writers' questions, with the other
  writers' questions alone as precedents, and the target is the mean over writers of the share of their
  unanswerable questions declined. That is the FAQ meeting a new shopper: shoppers ask the help
  centre's gaps in their own words, and a writer's questions resemble each other more than anyone
  else's (measured: a threshold from shuffled k-fold declined 89.7% cross-validated but 80.6% of the
  unanswerable questions of the next three writers; chosen leaving one writer out, with those three
  writers learned from too, 89.6% of the next writer's, aimed at 90%, and 95.9% of the one after,
  aimed at 92%). With fewer writers, repeated stratified k-fold over the questions;
- ``cross_validate`` repeats the whole procedure (weights and threshold) without each writer (or
  fold) and measures the one left out: the out-of-sample decline rates.

A question can lack a feature: ``precedent`` says nothing when the labelled questions were labelled
against other passages than its hits (an article added or edited since) or when a shop turns them
off. Such a question is not scored as if the feature were 0 (it is not neutral: most answerable
questions have a positive precedent), but by ``fallback``, the same fitting without that feature
(``OPTIONAL``), with its own weights and threshold (``for_values`` picks the model).

``python -m evals.bench_retrieval --fit --target T`` runs it on knowledge_base/questions with the real
embedder and writes the file (with the cross-validated rates in ``about``, per writer); ``python -m
evals.bench_retrieval`` measures the fitted model in sample, cross-validated and on held-out questions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
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
MIN_WRITERS = 3  # fewer writers' sets: the folds are k-fold over the questions
C = 1.0  # inverse L2 strength (scikit-learn's default): no search, so nothing is tuned on the test folds


Rows = Sequence[Mapping[str, float]]


@dataclass(frozen=True)
class Writers:
    """Who wrote each labelled question (``names``, one per question, in the rows' order) and the rows
    re-scored with some writers' questions left out of the precedents (``rescore``; an empty set gives
    the rows as they are: each question left out of its own)."""

    names: tuple[str, ...]
    rescore: Callable[[frozenset[str]], Rows]

    def usable(self, minimum: int = MIN_WRITERS) -> bool:
        return len(set(self.names)) >= minimum


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


def writer_out_of_fold(y: np.ndarray, writers: Writers, features: Sequence[str], floor: float,
                       left_out: frozenset[str] = frozenset()) -> np.ndarray:
    """Each question's probability from the model fitted on the other writers' questions, precedents
    included (NaN for the questions of the ``left_out`` writers, which take no part)."""
    names = np.array(writers.names, dtype=object)
    out = np.full(len(y), np.nan)
    for name in dict.fromkeys(n for n in writers.names if n not in left_out):
        rows = writers.rescore(left_out | {name})
        x = _matrix(rows, features)
        test = names == name
        train = ~test & ~np.isin(names, list(left_out))
        out[test] = _floored(_probabilities(x[test], _fit_weights(x[train], y[train])),
                             [rows[i] for i in np.flatnonzero(test)], floor)
    return out


def writer_rates(declined: np.ndarray, answerable: np.ndarray, names: Sequence[str],
                 scored: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """Per writer: how many unanswerable questions, how many of them declined, and the same of the
    answerable ones (only the ``scored`` questions count, when given)."""
    names_ = np.array(names, dtype=object)
    counted = np.ones(len(names_), dtype=bool) if scored is None else scored
    out = {}
    for name in dict.fromkeys(names):
        un, ans = (names_ == name) & counted & ~answerable, (names_ == name) & counted & answerable
        if un.any() or ans.any():
            out[name] = {"unanswerable": int(un.sum()), "declined": int((declined & un).sum()),
                         "answerable": int(ans.sum()), "wrongly_declined": int((declined & ans).sum())}
    return out


def _mean_share(rates: Mapping[str, Mapping[str, int]], part: str, whole: str) -> float:
    shares = [r[part] / r[whole] for r in rates.values() if r[whole]]
    return float(np.mean(shares)) if shares else 0.0


def writer_threshold(probability: np.ndarray, answerable: np.ndarray, names: Sequence[str], target: float) -> float:
    """The lowest threshold (halfway between two unanswerable questions' probabilities, as
    ``lowest_threshold``) at which the writers decline, on average, at least ``target`` of their
    unanswerable questions (questions without a probability take no part)."""
    scored = ~np.isnan(probability)
    negatives = np.unique(probability[scored & ~answerable])
    candidates = [0.0, *((negatives[:-1] + negatives[1:]) / 2)]
    candidates.append(float(negatives[-1]) + 1e-6 if len(negatives) else 0.5)
    for threshold in candidates:
        rates = writer_rates(probability < threshold, answerable, names, scored)
        if _mean_share(rates, "declined", "unanswerable") >= target - 1e-9:
            return float(threshold)
    return candidates[-1]


def fit(rows: Sequence[Mapping[str, float]], answerable: Sequence[bool], embedder: str, target: float = 0.9,
        floor: float = 0.0, features: Sequence[str] = FEATURES, about: dict[str, Any] | None = None,
        fallback_target: float | None = None, writers: Writers | None = None) -> AnswerModel:
    """Weights on all the questions; the threshold on their out-of-fold probabilities (see the module doc:
    the folds are the ``writers`` when there are enough of them), counting the questions under the cosine
    ``floor`` as declined (the rule declines them first). When
    ``features`` has optional ones, the ``fallback`` is fitted the same way without them, its threshold
    declining ``fallback_target`` (default ``target``) of the unanswerable questions, and cross-validated
    (its ``about``)."""
    x, y = _matrix(rows, features), np.asarray(answerable, dtype=bool)
    if writers is not None and writers.usable():
        threshold = writer_threshold(writer_out_of_fold(y, writers, features, floor), y, writers.names, target)
    else:
        threshold = lowest_threshold(_floored(out_of_fold(x, y), rows, floor), y, target)
    mean, scale, weights, intercept = _fit_weights(x, y)
    fallback = None
    required = [f for f in features if f not in OPTIONAL]
    if 0 < len(required) < len(features):  # a model of optional features alone has nothing to fall back on
        aim = target if fallback_target is None else fallback_target
        fallback = fit(rows, answerable, embedder, aim, floor, required, writers=writers, about={
            "without": [f for f in features if f in OPTIONAL], "target": aim,
            "cross_validation": cross_validate(rows, answerable, aim, floor, required, writers=writers)})
    return AnswerModel(tuple(features), tuple(round(float(v), 6) for v in mean),
                       tuple(round(float(v), 6) for v in scale), tuple(round(float(v), 6) for v in weights),
                       round(intercept, 6), round(threshold, 6), embedder, dict(about or {}), fallback)


def cross_validate(rows: Sequence[Mapping[str, float]], answerable: Sequence[bool], target: float = 0.9,
                   floor: float = 0.0, features: Sequence[str] = FEATURES, folds: int = FOLDS,
                   seeds: Sequence[int] = SEEDS, writers: Writers | None = None) -> dict[str, Any]:
    """Out-of-sample rates of the whole fitting procedure: ``fit`` on k-1 folds (its threshold from
    out-of-fold probabilities within them), measured on the held-back fold; repeated over ``seeds``.
    With ``writers`` (enough of them) the folds are the writers, as ``fit``'s (``by_writer``)."""
    from sklearn.model_selection import StratifiedKFold

    if writers is not None and writers.usable():
        return by_writer(answerable, target, floor, features, writers)
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


def by_writer(answerable: Sequence[bool], target: float, floor: float, features: Sequence[str],
              writers: Writers) -> dict[str, Any]:
    """Leave one writer out: ``fit`` on the other writers' questions (its threshold from their own
    writer-out probabilities, their questions alone as precedents), measured on the one left out. The
    rates are means over writers (each writer weighs the same, however many questions they wrote);
    ``pooled``: over all the questions."""
    y = np.asarray(answerable, dtype=bool)
    names = np.array(writers.names, dtype=object)
    declined = np.zeros(len(y), dtype=bool)
    thresholds = {}
    for name in dict.fromkeys(writers.names):
        left_out = frozenset({name})
        inner = writer_out_of_fold(y, writers, features, floor, left_out)
        thresholds[name] = round(writer_threshold(inner, y, writers.names, target), 4)
        rows = writers.rescore(left_out)
        x, test = _matrix(rows, features), names == name
        probability = _floored(_probabilities(x[test], _fit_weights(x[~test], y[~test])),
                               [rows[i] for i in np.flatnonzero(test)], floor)
        declined[test] = probability < thresholds[name]
    rates = writer_rates(declined, y, writers.names)
    return {"folds": "writer", "writers": rates, "thresholds": thresholds, "target": target, "floor": floor,
            "declined_unanswerable": round(_mean_share(rates, "declined", "unanswerable"), 4),
            "false_declines": round(_mean_share(rates, "wrongly_declined", "answerable"), 4),
            "pooled": {"declined_unanswerable": round(float(declined[~y].mean()), 4) if (~y).any() else 0.0,
                       "false_declines": round(float(declined[y].mean()), 4) if y.any() else 0.0}}
