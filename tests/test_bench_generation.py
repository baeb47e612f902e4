"""`shopdesk bench`: the report's shape and sanity (never its speed: that depends on the machine)."""

import json
import math
from pathlib import Path

import pytest

from app.cli import main
from evals.bench_generation import TARGETS, TOP_LEVEL, targets
from evals.bench_turns import conversations


def test_targets_pass_fail_and_unmeasured():
    got = targets({"decode_roofline_ratio": 0.31, "turn_latency_p50_s": 1.2, "vs_llama_cpp_turn_ratio": None})
    assert set(got) == set(TARGETS)
    assert got["decode_roofline_ratio"]["pass"] is True and got["turn_latency_p50_s"]["pass"] is False
    assert got["vs_llama_cpp_turn_ratio"]["pass"] is None and got["guard_acceptance"]["value"] is None


def test_conversations_are_plain_demo_shop_transcripts():
    full, quick = conversations(), conversations(quick=True)
    assert full and set(t.id for t in quick) <= set(t.id for t in full) and len(quick) < len(full)
    for t in full:
        assert "adversarial" not in t.tags and t.seed != "empty" and not any(t.fixtures.values())
    assert len({Path(t.source).parent for t in quick}) == len(quick)  # one per folder


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.integration
def test_quick_bench_writes_the_report(real_settings, real_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SHOPDESK_MODEL_CACHE_DIR_OVERRIDE", str(real_settings.model_cache_dir))
    out = tmp_path / "bench.json"
    assert main(["--data-dir", str(real_settings.data_dir), "bench", "--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {*TOP_LEVEL, "targets", "detail"}
    for key in TOP_LEVEL:
        value = report[key]
        if key == "vs_llama_cpp_turn_ratio" and value is None:
            assert report["detail"]["llama_cpp"]["available"] is False and report["detail"]["llama_cpp"]["why"]
            continue
        assert _positive(value) or (key == "guard_acceptance" and value == 0), (key, value)
    assert 0 <= report["guard_acceptance"] <= 1 and report["turn_latency_p50_s"] <= report["turn_latency_p95_s"]
    assert set(report["targets"]) == set(TARGETS)
    assert all(t["pass"] in (True, False, None) for t in report["targets"].values())

    detail = report["detail"]
    assert _positive(detail["memory_bandwidth"]["gbs"])
    assert {detail["before_setup"], detail["default_setup"]} <= set(detail["decode"])
    for setup in detail["decode"].values():
        for key in ("load_s", "weight_mb", "prefill_s", "decode_tok_s", "bandwidth_limit_tok_s", "roofline_ratio"):
            assert _positive(setup[key]), (key, setup)
    routes = detail["turns"]["default"]["guard_by_route"]
    assert routes and all(0 <= r["rate"] <= 1 and r["n"] > 0 for r in routes.values())
    for sessions in ("1", "4", "16"):
        assert _positive(detail["concurrency"][sessions]["turns_per_s"]), detail["concurrency"][sessions]
    assert "decode_roofline_ratio" in capsys.readouterr().out  # the printed summary
