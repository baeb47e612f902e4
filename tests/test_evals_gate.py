"""The regression gate: newly failing transcripts and metric drops beyond the tolerance fail it."""

import json
import shutil
from pathlib import Path

import pytest

from app.config import load_settings
from app.errors import TranscriptError
from app.factory import Mode
from evals.command import run_eval
from evals.gate import compare, load_report
from knowledge_base.loader import DOCS_DIR

REPO = Path(__file__).resolve().parents[1]
FAKES = Mode(fake_models=True)


def result(tid, passed, digest="same", routes=(("faq", "faq"),)):
    turns = [{"expect": {"route": want}, "route": got, "intent": f"{got}.x", "sources": [], "model_used": False,
              "guard_accepted": True, "guard": [], "latency_s": 0.1, "failures": [] if want == got else ["route"]}
             for want, got in routes]
    return {"id": tid, "passed": passed, "digest": digest, "tags": [], "turns": turns}


def test_a_newly_failing_transcript_fails_the_gate_and_old_failures_do_not():
    base = {"results": [result("a", True), result("b", False), result("c", False), result("gone", True)]}
    now = {"results": [result("a", False), result("b", False), result("c", True), result("new", False)]}
    gate = compare(now, base, tolerance=1.0)
    assert gate.newly_failing == ["a", "new"] and not gate.passed
    assert gate.still_failing == ["b"] and gate.fixed == ["c"] and gate.not_run == ["gone"]
    assert "newly failing: a, new" in gate.describe()


def test_a_metric_drop_beyond_the_tolerance_fails_and_within_it_passes():
    wrong = (("faq", "faq"),) * 8 + (("faq", "returns"),) * 2
    base = {"results": [result("a", True, routes=(("faq", "faq"),) * 10)]}
    now = {"results": [result("a", True, routes=wrong)]}  # route accuracy 100% -> 80%, transcript still "passes"
    gate = compare(now, base, tolerance=0.05)
    assert [d.metric for d in gate.drops] == ["route_accuracy"] and gate.drops[0].points == 0.2
    assert "route accuracy dropped 100.0% -> 80.0% (20.0 points > 5.0" in gate.describe()
    assert compare(now, base, tolerance=0.20).passed


def test_one_changed_turn_on_a_small_subset_is_not_a_drop():
    base = {"results": [result("a", True, routes=(("faq", "faq"),) * 4)]}
    one = {"results": [result("a", True, routes=(("faq", "faq"),) * 3 + (("faq", "returns"),))]}
    two = {"results": [result("a", True, routes=(("faq", "faq"),) * 2 + (("faq", "returns"),) * 2)]}
    assert compare(one, base, tolerance=0.02).passed  # 25 points, but one turn
    assert [d.metric for d in compare(two, base, tolerance=0.02).drops] == ["route_accuracy"]


def test_metrics_are_compared_only_over_unchanged_transcripts():
    base = {"results": [result("a", True, digest="v1")]}
    edited = {"results": [result("a", True, digest="v2", routes=(("faq", "returns"),)),
                          result("added", True, routes=(("faq", "smalltalk"),))]}
    gate = compare(edited, base, tolerance=0.0)
    assert gate.compared == 0 and gate.passed and gate.deltas["route_accuracy"]["current"] is None


def test_a_baseline_that_is_missing_or_not_a_report_is_a_clear_error(tmp_path):
    with pytest.raises(TranscriptError, match="not found: make one with `shopdesk eval evals/transcripts --json"):
        load_report(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text(json.dumps({"total": 3}))
    with pytest.raises(TranscriptError, match="is not an eval report"):
        load_report(tmp_path / "x.json")


def test_the_committed_baseline_is_a_real_model_run_of_the_suite():
    base = load_report(REPO / "evals" / "baseline.json")
    assert base["run"]["fake_models"] is False and base["total"] >= 40 and base["failed"] == []
    assert base["metrics"]["route_accuracy"]["n"] > 50 and base["metrics"]["retrieval_hit_rate"]["n"] > 5


def test_the_gate_catches_a_shortened_return_window(tmp_path):
    """A policy change in a copy of the help centre (30-day window -> 14 days) is caught against the baseline.

    With the fakes (hashing embedder, template replies) and the relevance floor off, the shoe-return
    question retrieves the real return articles and states their window; the baseline run passes.
    """
    settings = load_settings(data_dir=str(tmp_path / "data"), generator="template", retrieval_min_score=0.0)
    suite = [REPO / "evals" / "transcripts" / "faq" / "faq_policy.yaml"]
    baseline = tmp_path / "baseline.json"
    good = run_eval(suite, settings, FAKES, json_path=baseline, out=None, progress=False)
    assert "faq-policy-shoes-window" not in good.summary["failed"], "the control run must pass this transcript"

    docs = tmp_path / "docs"
    shutil.copytree(DOCS_DIR, docs)
    for article in docs.glob("*.md"):
        article.write_text(article.read_text(encoding="utf-8").replace("30 days", "14 days"), encoding="utf-8")
    broken = run_eval(suite, settings, FAKES, baseline=baseline, docs_dir=docs, report_dir=tmp_path / "out",
                      out=None, progress=False)
    assert broken.exit_code == 1 and not broken.gate.passed
    assert "faq-policy-shoes-window" in broken.gate.newly_failing
    assert "faq-policy-shoes-window" in (tmp_path / "out" / "failed.yaml").read_text(encoding="utf-8")

    same = run_eval(suite, settings, FAKES, baseline=baseline, out=None, progress=False)
    assert same.exit_code == 0 and same.gate.passed  # the unchanged help centre passes its own baseline


def test_the_gate_catches_a_policy_change_that_the_return_flow_enforces(tmp_path):
    """A shop's policy file with a 7-day window refuses the return the transcripts expect to be created."""
    settings = load_settings(data_dir=str(tmp_path / "data"), generator="template")
    suite = [REPO / "evals" / "transcripts" / "returns" / "returns.yaml"]
    baseline = tmp_path / "baseline.json"
    good = run_eval(suite, settings, FAKES, json_path=baseline, tags=("write",), out=None, progress=False)
    assert "return-eligible-full" not in good.summary["failed"], "the control run must pass this transcript"

    policy = tmp_path / "policy.yaml"
    text = (REPO / "knowledge_base" / "policy.yaml").read_text(encoding="utf-8")
    policy.write_text(text.replace("days: 30", "days: 7").replace("window_days: 30", "window_days: 7"),
                      encoding="utf-8")
    strict = settings.replace(policy_file=str(policy))
    broken = run_eval(suite, strict, FAKES, baseline=baseline, tags=("write",), out=None, progress=False)
    assert broken.exit_code == 1 and "return-eligible-full" in broken.gate.newly_failing
