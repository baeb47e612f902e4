"""Metrics, the self-contained HTML report and the failed-transcripts file, on runs with the fakes."""

import base64
import json
import re

import pytest

from app.config import load_settings
from app.factory import Mode
from evals.metrics import compute_metrics, percentile
from evals.report import expectation_rows, write_report
from evals.runner import run_paths
from evals.transcript import load_paths

FAKES = Mode(fake_models=True)
SUITE = """\
- id: ok-greeting
  tags: [smalltalk]
  turns:
    - user: hello there
      expect: {route: smalltalk, actions: []}
- id: wrong-route-and-state
  description: Expects the wrong route and no ticket, so it fails on both <on purpose>.
  tags: [human_handoff]
  turns:
    - user: I want to speak to a real person
      expect: {route: faq, handoff: true}
    - user: yes please
      expect: {actions: []}
  final_state:
    handoff_tickets: []
"""


@pytest.fixture()
def eval_settings(tmp_path):
    return load_settings(data_dir=str(tmp_path / "data"), generator="template", retrieval_min_score=0.0)


def turn(expect, route="faq", intent="faq.shipping", sources=(), failures=(), model_used=False, accepted=True,
         judged=True, guard=(), latency=0.1):
    return {"expect": expect, "route": route, "intent": intent, "sources": list(sources), "failures": list(failures),
            "model_used": model_used, "guard_accepted": accepted, "guard_judged": judged, "guard": list(guard),
            "latency_s": latency, "actions": [], "verified": False, "confidence": 0.9}


def test_metrics_count_only_turns_that_state_what_they_measure():
    results = [
        {"passed": True, "tags": ["faq"], "turns": [
            turn({"route": "faq", "sources": ["a"]}, sources=["a", "b"], model_used=True, latency=1.0),
            turn({"intent": "faq.shipping"}, model_used=True, accepted=False, guard=["ungrounded", "missing:SD-1"],
                 latency=2.0)]},
        {"passed": False, "tags": ["faq", "policy"], "turns": [
            turn({"route": "faq", "sources": ["c"]}, route="returns", sources=["a"], failures=["route: x"],
                 model_used=True, accepted=False, judged=False, guard=["timeout"], latency=3.0),
            turn({}, route="smalltalk", latency=4.0)]},
    ]
    m = compute_metrics(results)
    assert m["transcripts"] == {"n": 2, "passed": 1, "rate": 0.5}
    assert m["route_accuracy"] == {"n": 2, "correct": 1, "rate": 0.5}
    assert m["intent_accuracy"]["rate"] == 1.0 and m["intent_accuracy"]["n"] == 1
    assert m["retrieval_hit_rate"] == {"n": 2, "hits": 1, "rate": 0.5}
    # the timeout is not a verdict of the guard: 1 accepted of 2 judged, 1 not judged
    g = m["guard_acceptance"]
    assert (g["n"], g["accepted"], g["rate"], g["not_judged"]) == (2, 1, 0.5, 1)
    assert g["rejection_reasons"] == {"ungrounded": 1, "missing": 1, "timeout": 1}
    assert g["rejection_details"]["missing:SD-1"] == 1
    assert m["by_tag"]["policy"] == {"n": 1, "passed": 0, "rate": 0.0}
    assert m["by_route"]["faq"] == {"n": 3, "passed": 2, "rate": 0.6667}
    labels, matrix = m["confusion"]["labels"], m["confusion"]["matrix"]
    assert matrix[labels.index("faq")][labels.index("returns")] == 1
    assert matrix[labels.index("faq")][labels.index("faq")] == 2
    assert m["latency"]["p50_s"] == 3.0 and m["latency"]["max_s"] == 4.0
    assert compute_metrics([])["route_accuracy"]["rate"] is None
    assert percentile([1, 2, 3, 4, 5], 0.95) == 5 and percentile([], 0.5) == 0.0


def test_expectation_rows_say_in_words_what_was_expected_and_what_happened():
    failures = ["route: expected faq, got returns", "reply_contains: '30 days' not in reply"]
    rows = expectation_rows(turn({"route": "faq", "actions": [], "reply_contains": ["30 days"]}, route="returns",
                                 failures=failures))
    by_check = {r["check"]: r for r in rows}
    assert by_check["route"] == {"check": "route", "expected": "handled as faq", "actual": "handled as returns",
                                 "ok": False, "messages": ["expected faq, got returns"]}
    assert by_check["actions"]["ok"] and by_check["actions"]["expected"] == "no change to any order or ticket"
    assert not by_check["reply_contains"]["ok"] and "“30 days”" in by_check["reply_contains"]["expected"]


def test_report_is_self_contained_and_shows_every_failed_turn(tmp_path, eval_settings):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    summary = run_paths([suite], eval_settings, FAKES)
    assert summary["failed"] == ["wrong-route-and-state"]
    files = write_report(summary, tmp_path / "out")
    html = files["html"].read_text(encoding="utf-8")

    assert "<script" not in html and "<link" not in html and "@import" not in html
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for s in sources)
    assert "1 of 2 conversations failed" in html
    assert "handled as faq" in html and "handled as human_handoff" in html  # expected vs actual route
    assert "open_handoff_ticket" in html and "expected 0 row(s), found 1" in html  # actions and state diff
    assert "&lt;on purpose&gt;" in html  # shopper and transcript text is escaped
    assert f"{suite}:6" in html  # where the failing transcript is

    data = json.loads(files["json"].read_text(encoding="utf-8"))
    assert data["failed"] == ["wrong-route-and-state"] and data["metrics"]["route_accuracy"]["n"] == 2

    (again,) = load_paths([files["failed"]])  # the failed file re-runs just those, unchanged
    assert again.id == "wrong-route-and-state" and again.raw == load_paths([suite])[1].raw
    assert run_paths([files["failed"]], eval_settings, FAKES)["failed"] == ["wrong-route-and-state"]


def test_a_clean_run_removes_a_stale_failed_file(tmp_path, eval_settings):
    out = tmp_path / "out"
    out.mkdir()
    (out / "failed.yaml").write_text("[]\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.split("- id: wrong")[0], encoding="utf-8")
    files = write_report(run_paths([suite], eval_settings, FAKES), out)
    assert "failed" not in files and not (out / "failed.yaml").exists()
    assert "All 1 conversations passed" in files["html"].read_text(encoding="utf-8")


class ExplodingClassifier:
    """A classifier with a bug on one message (an exception the orchestrator does not expect; a failing
    generator would not do: the orchestrator falls back to the template reply, tests/test_faults.py)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def classify(self, text):
        if text == "hello there":
            raise KeyError("bug in the classifier")
        return self.inner.classify(text)


def test_a_crash_fails_that_transcript_and_the_run_goes_on(tmp_path, eval_settings, fake_models):
    from dataclasses import replace

    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.split("- id: wrong")[0] + """\
- id: out-of-scope-needs-no-model
  turns:
    - user: write a poem about cats
      expect: {route: out_of_scope}
""", encoding="utf-8")
    summary = run_paths([suite], eval_settings, FAKES,
                        models=replace(fake_models, classifier=ExplodingClassifier(fake_models.classifier)))
    crashed, fine = summary["results"]
    assert not crashed["passed"] and "KeyError: 'bug in the classifier'" in crashed["error"]
    assert fine["passed"] and fine["error"] is None
    html = write_report(summary, tmp_path / "out")["html"].read_text(encoding="utf-8")
    assert "The assistant crashed during this conversation" in html and "bug in the classifier" in html
