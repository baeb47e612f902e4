"""Calibration on validation data (out-of-fold predictions on the training set, never the test split).

1. ``fit_temperature``: one scalar T for softmax(logits / T) that minimises the negative log-likelihood
   of the out-of-fold logits, so a confidence of 0.8 is right about 80% of the time.
2. ``choose_gate``: the router's confidence gate and top-2 margin. The target (issue 3) is
   out-of-scope recall >= 0.90 with at most 3% of in-scope messages rejected: among the gates that
   reject at most ``max_in_scope_rejected`` of in-scope validation messages, the one with the
   highest out-of-scope recall; ties go to the gate that rejects fewer in-scope messages, then to
   the lower thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from intents.labels import ROUTES, route_of
from intents.metrics import OOS, Gate

MAX_IN_SCOPE_REJECTED = 0.03
CONFIDENCE_GRID = tuple(round(x, 2) for x in np.arange(0.0, 0.96, 0.01))
MARGIN_GRID = tuple(round(x, 2) for x in np.arange(0.0, 0.61, 0.01))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Grid search over log-spaced temperatures (0.1 .. 10), then a finer grid around the best."""

    def nll(t: float) -> float:
        p = _softmax(logits / t)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))

    grid = np.exp(np.linspace(np.log(0.1), np.log(10.0), 61))
    best = min(grid, key=nll)
    fine = np.linspace(best / 1.1, best * 1.1, 41)
    return round(float(min(fine, key=nll)), 4)


def route_scores(probs: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per message: index of the top route (in ``ROUTES``), its probability, the top-2 margin."""
    membership = np.zeros((len(labels), len(ROUTES)))
    for i, label in enumerate(labels):
        membership[i, ROUTES.index(route_of(label))] = 1.0
    per_route = probs @ membership
    ordered = np.sort(per_route, axis=1)
    return per_route.argmax(axis=1), ordered[:, -1], ordered[:, -1] - ordered[:, -2]


def gate_curve(probs: np.ndarray, labels: Sequence[str], true_routes: Sequence[str]) -> np.ndarray:
    """For every (confidence, margin) of the grids: [confidence, margin, oos_recall, in_scope_rejected]."""
    top, p, margin = route_scores(probs, labels)
    predicted_oos = top == ROUTES.index(OOS)
    oos = np.array([r == OOS for r in true_routes], dtype=bool)
    if not oos.any() or oos.all():
        raise ValueError("calibration needs both out-of-scope and in-scope validation messages")
    rows = []
    for c in CONFIDENCE_GRID:
        low_p = p < c
        for m in MARGIN_GRID:
            rejected = predicted_oos | low_p | (margin < m)
            rows.append((c, m, rejected[oos].mean(), rejected[~oos].mean()))
    return np.array(rows)


def choose_gate(probs: np.ndarray, labels: Sequence[str], true_routes: Sequence[str],
                max_in_scope_rejected: float = MAX_IN_SCOPE_REJECTED) -> tuple[Gate, dict]:
    curve = gate_curve(probs, labels, true_routes)
    allowed = curve[curve[:, 3] <= max_in_scope_rejected + 1e-12]
    if not len(allowed):  # even no gate rejects too much (the classifier calls in-scope messages OOS)
        allowed = curve[(curve[:, 0] == 0) & (curve[:, 1] == 0)]
    order = np.lexsort((allowed[:, 1], allowed[:, 0], allowed[:, 3], -allowed[:, 2]))
    c, m, recall, rejected = allowed[order[0]]
    gate = Gate(float(c), float(m))
    return gate, {"confidence_min": gate.confidence_min, "margin_min": gate.margin_min,
                  "validation_oos_recall": float(recall), "validation_in_scope_rejected": float(rejected),
                  "max_in_scope_rejected": max_in_scope_rejected}
