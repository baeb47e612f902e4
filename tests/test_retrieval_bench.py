"""The retrieval benchmark's metrics, and one run of the script with the fakes (fast)."""

import json
from types import SimpleNamespace

from evals.bench_retrieval import (
    decline_rates,
    doc_ranking,
    lowest_floor,
    main,
    percentile,
    ranking_metrics,
    relevance,
    two_fold_floor,
)


def test_ranking_metrics_by_hand():
    rankings = [["a", "b"], ["x", "a"], ["x", "y", "z", "a"], []]
    m = ranking_metrics(rankings, [["a"], ["a", "q"], ["a"], ["a"]])
    assert m == {"n": 4, "hit@1": 0.25, "hit@3": 0.5, "mrr": round((1 + 1 / 2 + 1 / 4) / 4, 4)}


def test_doc_ranking_counts_an_article_once():
    hits = [SimpleNamespace(doc_id=d) for d in ("a", "a", "b", "a", "c")]
    assert doc_ranking(hits) == ["a", "b", "c"]


def test_relevance_is_the_best_cosine_among_the_top_k():
    hits = [SimpleNamespace(similarity=s) for s in (0.3, 0.5, 0.9)]
    assert relevance(hits, 2) == 0.5 and relevance([], 3) == 0.0


def test_decline_rates_and_the_lowest_floor_for_a_target():
    pos, neg = [0.6, 0.5, 0.45, 0.3], [0.2, 0.35, 0.4, 0.5]
    assert decline_rates(pos, neg, 0.45) == {"floor": 0.45, "declined_unanswerable": 0.75, "false_declines": 0.25}
    assert lowest_floor(pos, neg, 0.75) == 0.405  # just above 0.4
    assert lowest_floor(pos, neg, 1.0) == 0.505
    two = two_fold_floor([0.6, 0.2, 0.5, 0.35], [True, False, True, False], 1.0)
    assert len(two["folds"]) == 2 and 0 <= two["false_declines"] <= 1


def test_percentile():
    assert percentile(list(range(1, 101)), 0.95) == 95 and percentile([], 0.5) == 0.0


def test_the_script_runs_with_the_fakes_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--fake-models", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["questions"]["answerable"] >= 150 and report["questions"]["unanswerable"] >= 30
    for name in ("dense", "bm25", "fused"):
        assert set(report[name]) == {"n", "hit@1", "hit@3", "mrr"}
        assert 0 <= report[name]["hit@1"] <= report[name]["hit@3"] <= 1
    assert report["latency"]["fused"]["p95_ms"] > 0 and len(report["fusion_sweep"]) == 20
    assert "hit@1" in capsys.readouterr().out
