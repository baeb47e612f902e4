"""Route-level metrics of an intent classifier, and the rejection rule the router's gates apply.

A message is *rejected* (not answered as in-scope) when its top route is ``out_of_scope`` or the
router's gates fail: top route probability below the confidence gate, or the gap to the second
route below the margin. Out-of-scope recall counts rejected out-of-scope messages; in-scope
rejection counts rejected in-scope ones (those get a clarifying question instead of an answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from intents.classifier import Prediction
from intents.labels import ROUTES

OOS = "out_of_scope"


@dataclass(frozen=True)
class Gate:
    confidence_min: float
    margin_min: float


def route_top2(prediction: Prediction) -> tuple[str, float, float]:
    """(top route, its probability, margin to the second route)."""
    ranking = prediction.route_ranking()
    top_route, top_p = ranking[0]
    return top_route, top_p, top_p - (ranking[1][1] if len(ranking) > 1 else 0.0)


def is_rejected(prediction: Prediction, gate: Gate) -> bool:
    route, p, margin = route_top2(prediction)
    return route == OOS or p < gate.confidence_min or margin < gate.margin_min


def route_report(true_routes: Sequence[str], pred_routes: Sequence[str]) -> dict:
    """Per-route precision/recall/F1/support, macro-F1, accuracy and the confusion matrix."""
    if len(true_routes) != len(pred_routes):
        raise ValueError("true and predicted routes differ in length")
    index = {r: i for i, r in enumerate(ROUTES)}
    matrix = np.zeros((len(ROUTES), len(ROUTES)), dtype=np.int64)
    for t, p in zip(true_routes, pred_routes, strict=True):
        matrix[index[t], index[p]] += 1
    per_route = {}
    for r, i in index.items():
        tp, predicted, actual = matrix[i, i], matrix[:, i].sum(), matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_route[r] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                        "support": int(actual)}
    present = [r for r in ROUTES if per_route[r]["support"]]
    return {
        "n": len(true_routes),
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        "macro_f1": float(np.mean([per_route[r]["f1"] for r in present])) if present else 0.0,
        "per_route": per_route,
        "confusion": {"labels": list(ROUTES), "matrix": matrix.tolist()},
    }


def gate_report(predictions: Sequence[Prediction], true_routes: Sequence[str], gate: Gate) -> dict:
    """Out-of-scope recall and in-scope rejection under ``gate`` (see the module docstring)."""
    rejected = np.array([is_rejected(p, gate) for p in predictions], dtype=bool)
    oos = np.array([r == OOS for r in true_routes], dtype=bool)
    top_is_oos = np.array([p.route_ranking()[0][0] == OOS for p in predictions], dtype=bool)
    return {
        "confidence_min": gate.confidence_min,
        "margin_min": gate.margin_min,
        "oos_recall": float(rejected[oos].mean()) if oos.any() else 0.0,
        "oos_routed_out_of_scope": float(top_is_oos[oos].mean()) if oos.any() else 0.0,
        "in_scope_rejected": float(rejected[~oos].mean()) if (~oos).any() else 0.0,
        "in_scope_clarified": float((rejected & ~top_is_oos)[~oos].mean()) if (~oos).any() else 0.0,
    }


def evaluate(predictions: Sequence[Prediction], true_routes: Sequence[str], gate: Gate) -> dict:
    """Both reports for one set of predictions (argmax routes for F1; the gate for rejection)."""
    return {**route_report(true_routes, [p.route_ranking()[0][0] for p in predictions]),
            "gate": gate_report(predictions, true_routes, gate)}
