"""`shopdesk eval` on the command line, and the same results from worker processes (--jobs)."""

import json
import re

from app.cli import main
from app.config import load_settings
from app.factory import Mode
from evals.runner import run_paths

SUITE = """\
- id: greeting
  tags: [smalltalk]
  turns:
    - user: hello there
      expect: {route: smalltalk, actions: []}
- id: handoff-yes
  tags: [human_handoff]
  turns:
    - user: I want to speak to a real person
      expect: {route: human_handoff, handoff: true}
    - user: yes please
      expect: {actions: [{open_handoff_ticket: {}}]}
  final_state:
    handoff_tickets: [{status: open}]
- id: fails-on-purpose
  tags: [smalltalk]
  turns:
    - user: bye
      expect: {route: faq}
"""


def test_eval_command_writes_report_json_and_exit_code(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    base = ["--data-dir", str(tmp_path / "data"), "eval", str(suite), "--fake-models"]
    code = main([*base, "--report", str(tmp_path / "out"), "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert code == 1 and "2/3 transcripts passed" in out and "FAIL fails-on-purpose" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "report.html", "failed.yaml"}
    assert json.loads((tmp_path / "s.json").read_text())["failed"] == ["fails-on-purpose"]

    # the same run against its own report: nothing new fails, so the gate passes (exit 0)
    assert main([*base, "--baseline", str(tmp_path / "out" / "report.json")]) == 0
    assert "gate vs" in capsys.readouterr().out
    assert main([*base, "--tags", "human_handoff"]) == 0  # only the passing handoff transcript


def test_bad_options_fail_fast_with_a_clear_message(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    base = ["--data-dir", str(tmp_path / "data"), "eval", str(suite), "--fake-models"]
    assert main([*base, "--baseline", str(tmp_path / "missing.json")]) == 2
    assert "baseline" in capsys.readouterr().err and not (tmp_path / "data").exists()  # nothing ran
    assert main([*base, "--jobs", "0"]) == 2 and "--jobs must be at least 1" in capsys.readouterr().err
    assert main([*base, "--docs", str(tmp_path / "nodocs")]) == 2
    assert main(["--data-dir", str(tmp_path), "eval", "record"]) == 2


def test_worker_processes_give_the_same_results_in_the_same_order(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    settings = load_settings(data_dir=str(tmp_path / "data"), generator="template")
    one = run_paths([suite], settings, Mode(fake_models=True))
    two = run_paths([suite], settings, Mode(fake_models=True), jobs=2)

    def essentials(summary):  # ticket ids are random per run
        return [(r["id"], r["passed"], [(x["route"], re.sub(r"HT-\w+", "HT-?", x["reply"]),
                                         [list(a) for a in x["actions"]]) for x in r["turns"]])
                for r in summary["results"]]

    assert essentials(two) == essentials(one) and two["run"]["jobs"] == 2
    assert two["failed"] == ["fails-on-purpose"]
