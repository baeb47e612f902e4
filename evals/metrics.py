"""Aggregate numbers of an eval run, computed from the per-turn records of ``evals.runner``.

Each metric is ``{"n": how many turns or transcripts it is measured on, ..., "rate": share or None}``;
``rate`` is None when nothing measured it (no turn states an expected route, say), so a report and
the gate can tell "0%" from "not measured".

- route / intent accuracy: over turns whose ``expect`` states a route / an intent;
- retrieval hit rate: over turns that state expected ``sources``; a hit cites all of them;
- guard acceptance: over turns where the model wrote a reply and the guard judged it, the share the
  guard accepted (the shopper got the model's text, ``generated_by`` is the model). Turns where the
  model ran out of its time budget or failed are counted apart (``not_judged``): they measure the
  machine's speed, not the model's faithfulness, and would make the number depend on the CI box;
  Rejections are counted by kind (``missing``, ``invented``, ``ungrounded``...) and in detail;
- latency: wall-clock seconds per turn (the whole ``respond``), percentiles by nearest rank.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from intents.labels import ROUTES


def rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of ``values``; 0.0 for none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def expected_and_actual_route(turn: dict[str, Any]) -> tuple[str, str] | None:
    """(expected, actual) route of a turn that states a route or an intent; None otherwise."""
    expect = turn["expect"]
    if "route" in expect:
        return str(expect["route"]), turn["route"]
    if "intent" in expect:
        return str(expect["intent"]).split(".", 1)[0], turn["intent"].split(".", 1)[0]
    return None


def _intent_ok(turn: dict[str, Any]) -> bool:
    want = str(turn["expect"]["intent"])
    got = turn["intent"] if "." in want else turn["intent"].split(".", 1)[0]
    return got == want


def _group(items: Iterable[tuple[str, bool]]) -> dict[str, dict[str, Any]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, ok in items:
        counts[key][0] += 1
        counts[key][1] += ok
    return {k: {"n": n, "passed": p, "rate": rate(p, n)} for k, (n, p) in sorted(counts.items())}


def confusion(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Counts of (expected, actual) route pairs as a matrix: rows expected, columns actual."""
    seen = {label for pair in pairs for label in pair}
    order = [r for r in (*ROUTES, "clarify", "invalid_input") if r in seen] + sorted(seen - set(ROUTES) - {
        "clarify", "invalid_input"})
    index = {label: i for i, label in enumerate(order)}
    matrix = [[0] * len(order) for _ in order]
    for want, got in pairs:
        matrix[index[want]][index[got]] += 1
    return {"labels": order, "matrix": matrix}


def compute_metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [x for r in results for x in r["turns"]]
    passed_turns = sum(not x["failures"] for x in turns)
    pairs = [p for p in (expected_and_actual_route(x) for x in turns) if p]
    routed = [x for x in turns if "route" in x["expect"]]
    intents = [x for x in turns if "intent" in x["expect"]]
    sourced = [x for x in turns if x["expect"].get("sources")]
    hits = sum(all(s in x["sources"] for s in _list(x["expect"]["sources"])) for x in sourced)
    model_turns = [x for x in turns if x.get("model_used")]
    judged = [x for x in model_turns if x.get("guard_judged", True)]
    accepted = sum(x["guard_accepted"] for x in judged)
    details = Counter(reason for x in model_turns if not x["guard_accepted"] for reason in x["guard"])
    reasons = Counter()  # by kind: "missing:SD-10002" and "missing:delivered" are both "missing"
    for reason, n in details.items():
        reasons[reason.split(":", 1)[0]] += n
    latencies = [x["latency_s"] for x in turns]
    return {
        "transcripts": {"n": len(results), "passed": sum(r["passed"] for r in results),
                        "rate": rate(sum(r["passed"] for r in results), len(results))},
        "turns": {"n": len(turns), "passed": passed_turns, "rate": rate(passed_turns, len(turns))},
        "by_tag": _group((tag, r["passed"]) for r in results for tag in r["tags"] or ["(untagged)"]),
        "by_route": _group((want, not x["failures"]) for x in turns
                           for want, _ in [expected_and_actual_route(x) or ("(not stated)", "")]),
        "route_accuracy": {"n": len(routed), "correct": sum(x["route"] == x["expect"]["route"] for x in routed),
                           "rate": rate(sum(x["route"] == x["expect"]["route"] for x in routed), len(routed))},
        "intent_accuracy": {"n": len(intents), "correct": sum(map(_intent_ok, intents)),
                            "rate": rate(sum(map(_intent_ok, intents)), len(intents))},
        "confusion": confusion(pairs),
        "retrieval_hit_rate": {"n": len(sourced), "hits": hits, "rate": rate(hits, len(sourced))},
        "guard_acceptance": {"n": len(judged), "accepted": accepted, "rate": rate(accepted, len(judged)),
                             "model_turns": len(model_turns), "not_judged": len(model_turns) - len(judged),
                             "template_only_turns": len(turns) - len(model_turns),
                             "rejection_reasons": dict(reasons.most_common()),
                             "rejection_details": dict(details.most_common())},
        "latency": {"n": len(latencies), "p50_s": percentile(latencies, 0.5), "p90_s": percentile(latencies, 0.9),
                    "p95_s": percentile(latencies, 0.95), "p99_s": percentile(latencies, 0.99),
                    "max_s": max(latencies, default=0.0),
                    "over_app_budget": sum(bool(x.get("over_app_budget")) for x in turns),
                    "mean_s": round(sum(latencies) / len(latencies), 4) if latencies else 0.0},
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
