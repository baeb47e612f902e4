"""The regression gate: compare a run with a stored report (``--baseline FILE``).

The gate fails when
- a transcript fails that did not fail in the baseline (it passed there, or it is new), or
- an aggregate metric (transcript pass rate, route accuracy, retrieval hit rate, guard acceptance)
  is lower than the baseline's by more than the tolerance (``eval_gate_tolerance``, 0.02 = two
  percentage points; ``--tolerance`` overrides it) and by more than one turn's (or transcript's) worth,
  so a single changed turn on a small subset (``--tags``) is not a drop; a transcript that newly
  fails is caught by the first rule anyway.

Metrics are compared over the transcripts both runs replayed unchanged (same id and same content
hash), so adding transcripts, or running a subset with ``--tags``, does not move the comparison;
new or edited transcripts are held to "must not fail" instead. Transcripts that already failed in the
baseline do not fail the gate (they are listed as still failing); ones that pass now are listed as fixed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.errors import TranscriptError
from evals.metrics import compute_metrics

GATED = (("transcripts", "transcript pass rate"), ("route_accuracy", "route accuracy"),
         ("retrieval_hit_rate", "retrieval hit rate"), ("guard_acceptance", "guard acceptance"))


@dataclass(frozen=True)
class Drop:
    metric: str
    label: str
    baseline: float
    current: float
    n: int

    @property
    def points(self) -> float:
        return round(self.baseline - self.current, 4)


@dataclass(frozen=True)
class GateResult:
    tolerance: float
    baseline: str
    newly_failing: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # in the baseline, not in this run
    compared: int = 0  # transcripts the metrics were compared on
    drops: list[Drop] = field(default_factory=list)  # beyond the tolerance
    deltas: dict[str, dict[str, Any]] = field(default_factory=dict)  # every gated metric, before and after

    @property
    def passed(self) -> bool:
        return not self.newly_failing and not self.drops

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        lines = [f"gate vs {self.baseline} (tolerance {self.tolerance:.3f}, metrics over {self.compared} "
                 f"unchanged transcripts): {'PASS' if self.passed else 'FAIL'}"]
        if self.newly_failing:
            lines.append("  newly failing: " + ", ".join(self.newly_failing))
        for d in self.drops:
            lines.append(f"  {d.label} dropped {d.baseline:.1%} -> {d.current:.1%} "
                         f"({d.points * 100:.1f} points > {self.tolerance * 100:.1f}; n={d.n})")
        if self.still_failing:
            lines.append("  still failing (failed in the baseline too): " + ", ".join(self.still_failing))
        if self.fixed:
            lines.append("  fixed since the baseline: " + ", ".join(self.fixed))
        if self.not_run:
            lines.append(f"  {len(self.not_run)} baseline transcript(s) not run this time")
        return "\n".join(lines)


def load_report(path: Path) -> dict[str, Any]:
    """A JSON report of an earlier run (``--report DIR`` writes DIR/report.json; ``--json FILE`` too)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranscriptError(f"baseline {path} not found: make one with "
                              f"`shopdesk eval evals/transcripts --json {path}`") from None
    except (OSError, ValueError) as exc:
        raise TranscriptError(f"baseline {path} is not a readable JSON report: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or not all(
            isinstance(r, dict) and {"id", "passed", "turns"} <= r.keys() for r in data["results"]):
        raise TranscriptError(f"baseline {path} is not an eval report (expected the JSON `shopdesk eval "
                              f"--report DIR` writes as DIR/report.json)")
    return data


def compare(current: dict[str, Any], baseline: dict[str, Any], tolerance: float,
            baseline_name: str = "baseline") -> GateResult:
    now = {r["id"]: r for r in current["results"]}
    before = {r["id"]: r for r in baseline["results"]}
    newly = [i for i, r in now.items() if not r["passed"] and (i not in before or before[i]["passed"])]
    still = [i for i, r in now.items() if not r["passed"] and i in before and not before[i]["passed"]]
    fixed = [i for i, r in now.items() if r["passed"] and i in before and not before[i]["passed"]]
    common = [i for i in now if i in before and now[i].get("digest") == before[i].get("digest")]
    m_now = compute_metrics([now[i] for i in common])
    m_before = compute_metrics([before[i] for i in common])
    drops, deltas = [], {}
    for key, label in GATED:
        b, c = m_before[key]["rate"], m_now[key]["rate"]
        deltas[key] = {"label": label, "baseline": b, "current": c, "n": m_now[key]["n"]}
        n = m_now[key]["n"]
        # one turn (or transcript) changing is never a drop: on a small subset it moves a rate by a lot
        if b is not None and c is not None and b - c > tolerance + 1e-9 and (b - c) * n > 1 + 1e-9:
            drops.append(Drop(key, label, b, c, n))
    return GateResult(tolerance=tolerance, baseline=baseline_name, newly_failing=newly, still_failing=still,
                      fixed=fixed, not_run=[i for i in before if i not in now], compared=len(common),
                      drops=drops, deltas=deltas)
