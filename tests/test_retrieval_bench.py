"""The retrieval benchmark's metrics, and one run of the script with the fakes (fast)."""

import json
from types import SimpleNamespace

from evals.bench_retrieval import (
    best_rule,
    decline_rates,
    doc_ranking,
    lowest_floor,
    main,
    percentile,
    ranking_metrics,
    relevance,
    rule_rates,
    two_fold_floor,
    two_fold_rule,
)
from knowledge_base.answerable import AnswerRule


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


# (best cosine, coverage, best sentence cosine, answerable) of six made-up questions
SIGNALS = [(0.70, 0.0, 0.0, True), (0.45, 1.0, 0.0, True), (0.45, 0.0, 0.6, True),
           (0.45, 0.0, 0.3, False), (0.60, 0.0, 0.1, False), (0.30, 1.0, 0.9, False)]


def test_rule_rates_count_what_the_rule_decides():
    sim, cov, sent, ans = (list(x) for x in zip(*SIGNALS, strict=True))
    rule = AnswerRule(0.4, 0.65, 0.65, 0.5)
    rates = rule_rates(sim, cov, sent, ans, rule)
    assert rates == {"min_score": 0.4, "accept_score": 0.65, "min_coverage": 0.65, "min_sentence_score": 0.5,
                     "declined_unanswerable": 1.0, "false_declines": 0.0}
    # the same questions through AnswerRule.decide: a passage with all or none of the question's words,
    # and a sentence scorer that gives the listed sentence cosine
    accepted = []
    for similarity, share, sentence, _ in SIGNALS:
        passage = SimpleNamespace(title="", section="", text="shipping canada" if share else "kayak",
                                  similarity=similarity)
        scorer = SimpleNamespace(best=lambda q, p, vector=None, v=sentence: v)
        accepted.append(rule.decide("shipping to canada", [passage], scorer).answerable)
    assert accepted == [True, True, True, False, False, False]
    assert rule_rates(sim, cov, sent, ans, AnswerRule.floor(0.45))["false_declines"] == 0.0  # 0.45 >= 0.45
    assert rule_rates(sim, cov, sent, ans, AnswerRule.floor(0.45))["declined_unanswerable"] == round(1 / 3, 4)


def test_best_rule_finds_the_fewest_false_declines_for_the_target():
    sim, cov, sent, ans = (list(x) for x in zip(*SIGNALS, strict=True))
    rule = best_rule(sim, cov, sent, ans, 1.0)
    rates = rule_rates(sim, cov, sent, ans, rule)
    assert rates["declined_unanswerable"] == 1.0 and rates["false_declines"] == 0.0, rule
    assert 0.3 < rule.min_score <= 0.45 and 0.6 < rule.accept_score <= 0.7
    assert 0.3 < rule.min_sentence_score <= 0.6
    lexical = best_rule(sim, cov, sent, ans, 1.0, sentence_scores=(2.0,))  # without the sentence check
    assert lexical.min_sentence_score == 2.0
    assert rule_rates(sim, cov, sent, ans, lexical)["false_declines"] == round(1 / 3, 4)  # the 3rd needs it
    assert best_rule([0.9], [1.0], [1.0], [False], 1.0) == AnswerRule(1.0, 1.0, 1.0)  # unreachable: decline all
    twice = [[v for v in x for _ in range(2)] for x in (sim, cov, sent, ans)]  # each fold gets one copy
    two = two_fold_rule(*twice, 1.0)
    assert len(two["folds"]) == 2 and two["declined_unanswerable"] == 1.0 and two["false_declines"] == 0.0


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
    n = sum(report["questions"].values())
    assert report["latency"]["decide_cold"]["n"] == report["latency"]["decide_warm"]["n"] == n
    assert report["latency"]["faq"]["n"] == 2 * n and report["latency"]["faq"]["p95_ms"] > 0
    a = report["answerability"]
    assert (a["min_score"], a["accept_score"]) == (0.4, 0.57) and 0 <= a["false_declines"] <= 1
    assert sum(a["reasons"]["answerable"].values()) == report["questions"]["answerable"]
    for key in ("rule", "lexical_rule"):
        assert report[f"{key}_for_90pct"]["declined_unanswerable"] >= 0.9
        assert len(report[f"{key}_two_fold"]["folds"]) == 2
    assert report["lexical_rule_for_90pct"]["min_sentence_score"] == 2.0
    assert report["floor_alone"]["floor"] == report["floor_for_90pct"]
    assert "hit@1" in capsys.readouterr().out
