"""Retrieval benchmark on the labelled shopper questions (knowledge_base/questions/*.yaml).

    python -m evals.bench_retrieval [--json FILE] [--fake-models] [--floor X] [--accept X] [--coverage X]
                                    [--sentence X] [--rrf-k K]

Builds a throw-away index of the repo's articles, then reports for dense, BM25 and fused retrieval:
hit@1, hit@3 and MRR@10 over distinct articles (a hit is any article labelled as answering the
question); for the answerability rule (knowledge_base/answerable.py: cosine floor, accept score, and
in between lexical coverage or one matching sentence), the same without the sentence check, and the
cosine floor alone: the share of unanswerable questions declined and of answerable ones wrongly
declined, the thresholds that decline 90% with the fewest false declines, and a two-fold check
(thresholds chosen on every other question, measured on the rest); and per-query latency of the
configured retriever (retrieval only: embedding the query, Chroma, BM25, fusion) and of the rule's
decision. Prints a table and writes a JSON report.
Targets (issue 6): fused hit@3 >= 0.95 and better than each alone, >= 90% of unanswerable questions
declined with fewer false declines than the floor alone, p95 <= 30 ms on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.answerable import AnswerRule, SentenceSimilarity, content_terms, coverage, query_vector
from knowledge_base.labelled import LabelledQuestion, load_questions

DEPTH = 10  # ranks looked at for MRR (and candidates asked of each retriever)
# the thresholds the rule search tries: floor, accept and sentence score in steps of 0.01, coverage of 0.05
RULE_SCORES = tuple(round(0.2 + 0.01 * i, 2) for i in range(46))  # 0.20 .. 0.65
RULE_COVERAGES = tuple(round(0.05 * i, 2) for i in range(21))  # 0 .. 1
RULE_SENTENCE_SCORES = (*(round(0.4 + 0.01 * i, 2) for i in range(31)), 2.0)  # 0.40 .. 0.70, and off


def doc_ranking(hits: Sequence[Any]) -> list[str]:
    """Distinct article ids in rank order (several chunks of one article count once)."""
    return list(dict.fromkeys(h.doc_id for h in hits))


def ranking_metrics(rankings: Sequence[Sequence[str]], expected: Sequence[Sequence[str]]) -> dict[str, float]:
    """hit@1, hit@3 and MRR@DEPTH of doc rankings against the sets of correct doc ids."""
    n = len(rankings)
    if n == 0:
        return {"n": 0, "hit@1": 0.0, "hit@3": 0.0, "mrr": 0.0}
    first = [next((r for r, doc in enumerate(ranking[:DEPTH], 1) if doc in set(want)), 0)
             for ranking, want in zip(rankings, expected, strict=True)]
    return {"n": n,
            "hit@1": round(sum(0 < r <= 1 for r in first) / n, 4),
            "hit@3": round(sum(0 < r <= 3 for r in first) / n, 4),
            "mrr": round(sum(1 / r for r in first if r) / n, 4)}


def decline_rates(answerable: Sequence[float], unanswerable: Sequence[float], floor: float) -> dict[str, float]:
    """With the signal of each question: share of unanswerable declined, share of answerable declined."""
    return {"floor": round(floor, 3),
            "declined_unanswerable": round(sum(s < floor for s in unanswerable) / max(1, len(unanswerable)), 4),
            "false_declines": round(sum(s < floor for s in answerable) / max(1, len(answerable)), 4)}


def lowest_floor(answerable: Sequence[float], unanswerable: Sequence[float], target: float) -> float:
    """The lowest floor (step 0.005) that declines at least ``target`` of the unanswerable questions."""
    for step in range(0, 201):
        floor = step * 0.005
        if decline_rates(answerable, unanswerable, floor)["declined_unanswerable"] >= target:
            return round(floor, 3)
    return 1.0


def two_fold_floor(signal: Sequence[float], answerable: Sequence[bool], target: float) -> dict[str, Any]:
    """Out-of-sample check of the floor: choose it on every other question, measure on the rest."""
    folds = []
    for held in (0, 1):
        pick = [(s, a) for i, (s, a) in enumerate(zip(signal, answerable, strict=True)) if i % 2 != held]
        test = [(s, a) for i, (s, a) in enumerate(zip(signal, answerable, strict=True)) if i % 2 == held]
        floor = lowest_floor([s for s, a in pick if a], [s for s, a in pick if not a], target)
        folds.append(decline_rates([s for s, a in test if a], [s for s, a in test if not a], floor))
    return {"folds": folds,
            "declined_unanswerable": round(sum(f["declined_unanswerable"] for f in folds) / 2, 4),
            "false_declines": round(sum(f["false_declines"] for f in folds) / 2, 4)}


def rule_rates(similarity: Sequence[float], share: Sequence[float], sentence: Sequence[float],
               answerable: Sequence[bool], rule: AnswerRule) -> dict[str, float]:
    """The rule's decline rates from each question's best cosine, coverage and best sentence cosine
    (what ``AnswerRule.decide`` does with them)."""
    sim, cov, sent = np.asarray(similarity), np.asarray(share), np.asarray(sentence)
    ans = np.asarray(answerable, dtype=bool)
    accept = (sim >= rule.min_score) & ((sim >= rule.accept_score) | (cov >= rule.min_coverage)
                                        | (sent >= rule.min_sentence_score))
    return {"min_score": rule.min_score, "accept_score": rule.accept_score, "min_coverage": rule.min_coverage,
            "min_sentence_score": rule.min_sentence_score,
            "declined_unanswerable": round(float((~accept[~ans]).sum()) / max(1, int((~ans).sum())), 4),
            "false_declines": round(float((~accept[ans]).sum()) / max(1, int(ans.sum())), 4)}


def best_rule(similarity: Sequence[float], share: Sequence[float], sentence: Sequence[float],
              answerable: Sequence[bool], target: float,
              sentence_scores: Sequence[float] = RULE_SENTENCE_SCORES) -> AnswerRule:
    """The thresholds (``RULE_SCORES`` for the floor and the accept score, ``RULE_COVERAGES``,
    ``sentence_scores``; ``(2.0,)``: no sentence check) that decline at least ``target`` of the
    unanswerable questions with the fewest false declines; ties: the most declined, then the middle one
    of the tied (in floor, accept, coverage, sentence order: a plateau's middle, not its edge). None
    reaching it: decline everything."""
    sim, cov, sent = np.asarray(similarity), np.asarray(share), np.asarray(sentence)
    ans = np.asarray(answerable, dtype=bool)
    scores, coverages = np.asarray(RULE_SCORES), np.asarray(RULE_COVERAGES)
    lo, hi, c = scores[:, None, None, None], scores[None, :, None, None], coverages[None, None, :, None]
    valid = (scores[None, :] >= scores[:, None])[..., None]  # accept scores under the floor = the floor alone
    key = np.full((len(scores), len(scores), len(coverages), len(sentence_scores)), np.inf)
    for m, s in enumerate(sentence_scores):  # one sentence threshold at a time: bounded memory
        accept = (sim >= lo) & ((sim >= hi) | (cov >= c) | (sent >= s))  # floor, accept, coverage, question
        declined = (~accept[..., ~ans]).sum(-1) / max(1, int((~ans).sum()))
        false = (~accept[..., ans]).sum(-1) / max(1, int(ans.sum()))
        key[..., m] = np.where((declined >= target - 1e-9) & valid, false - declined * 1e-6, np.inf)
    if not np.isfinite(key).any():
        return AnswerRule(1.0, 1.0, 1.0)
    tied = np.argwhere(key <= key.min() + 1e-12)
    i, j, k, m = tied[len(tied) // 2]
    return AnswerRule(RULE_SCORES[i], RULE_SCORES[j], RULE_COVERAGES[k], sentence_scores[m])


def two_fold_rule(similarity: Sequence[float], share: Sequence[float], sentence: Sequence[float],
                  answerable: Sequence[bool], target: float,
                  sentence_scores: Sequence[float] = RULE_SENTENCE_SCORES) -> dict[str, Any]:
    """Out-of-sample check of the rule: thresholds chosen on every other question, measured on the rest."""
    folds = []
    for held in (0, 1):
        pick = [i for i in range(len(similarity)) if i % 2 != held]
        test = [i for i in range(len(similarity)) if i % 2 == held]
        rule = best_rule(*([x[i] for i in pick] for x in (similarity, share, sentence, answerable)), target,
                         sentence_scores)
        folds.append(rule_rates(*([x[i] for i in test] for x in (similarity, share, sentence, answerable)), rule))
    return {"folds": folds,
            "declined_unanswerable": round(sum(f["declined_unanswerable"] for f in folds) / 2, 4),
            "false_declines": round(sum(f["false_declines"] for f in folds) / 2, 4)}


def relevance(hits: Sequence[Any], top_k: int) -> float:
    """The floor's signal: the best cosine among the hits the FAQ handler looks at (app/faq.py)."""
    return max((h.similarity for h in hits[:top_k]), default=0.0)


def _decision_row(q: LabelledQuestion, hits: Sequence[Any], d: Any) -> dict[str, Any]:
    return {"text": q.text, "top": hits[0].doc_id if hits else "", "similarity": round(d.similarity, 3),
            "coverage": None if d.coverage is None else round(d.coverage, 3),
            "sentence": None if d.sentence is None else round(d.sentence, 3), "reason": d.reason}


def _stats(ms: Sequence[float], cpu: Sequence[float], digits: int = 2) -> dict[str, Any]:
    return {"p50_ms": round(statistics.median(ms), digits), "p95_ms": round(percentile(ms, 0.95), digits),
            "max_ms": round(max(ms), digits), "cpu_p95_ms": round(percentile(cpu, 0.95), digits), "n": len(ms)}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[str], object], queries: Sequence[str], repeats: int = 1) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds per call (CPU time shows what waiting for cores hides)."""
    wall, cpu = [], []
    for _ in range(repeats):
        for q in queries:
            started, cpu_started = time.perf_counter(), time.process_time()
            fn(q)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    return wall, cpu


def run(settings: Any, mode: Any, questions: list[LabelledQuestion], floors: Sequence[float]) -> dict[str, Any]:
    from app.factory import embedder, faq_index, faq_retriever
    from knowledge_base.loader import DOCS_DIR, load_chunks
    from knowledge_base.retriever import DenseRetriever, LexicalRetriever

    emb = embedder(settings, mode)
    index = faq_index(settings, emb)
    started = time.perf_counter()
    index.sync(load_chunks(DOCS_DIR), emb)
    index_s = time.perf_counter() - started
    retrievers = {"dense": DenseRetriever(index, emb), "bm25": LexicalRetriever(index),
                  "fused": faq_retriever(settings.replace(retrieval_mode="hybrid"), emb, index)}
    answerable = [q for q in questions if q.answerable]
    unanswerable = [q for q in questions if not q.answerable]
    report: dict[str, Any] = {"questions": {"answerable": len(answerable), "unanswerable": len(unanswerable)},
                              "embedder": emb.name, "chunks": index.count(), "index_s": round(index_s, 2),
                              "settings": {k: getattr(settings, k) for k in (
                                  "retrieval_mode", "retrieval_top_k", "retrieval_min_score",
                                  "retrieval_accept_score", "retrieval_min_coverage", "retrieval_min_sentence_score",
                                  "retrieval_candidates", "retrieval_rrf_k", "retrieval_dense_weight")}}
    hits_by_name = {}
    for name, retriever in retrievers.items():
        hits = retriever.search_batch([q.text for q in questions], DEPTH)
        hits_by_name[name] = hits
        rankings = [doc_ranking(h) for h, q in zip(hits, questions, strict=True) if q.answerable]
        report[name] = ranking_metrics(rankings, [q.docs for q in answerable])
    report["fusion_sweep"] = fusion_sweep(retrievers["dense"], retrievers["bm25"], answerable,
                                          settings.retrieval_candidates)
    top_k = settings.retrieval_top_k
    rule = AnswerRule.from_settings(settings)
    sentences = SentenceSimilarity(emb)
    labels = [q.answerable for q in questions]
    top = [h[:top_k] for h in hits_by_name["fused"]]
    decisions = [rule.decide(q.text, h, sentences) for q, h in zip(questions, top, strict=True)]
    signal = [relevance(h, top_k) for h in top]
    share = [coverage(q.text, h) for q, h in zip(questions, top, strict=True)]
    sentence = [sentences.best(q.text, h) for q, h in zip(questions, top, strict=True)]
    report["answerability"] = {
        "min_score": rule.min_score, "accept_score": rule.accept_score, "min_coverage": rule.min_coverage,
        "min_sentence_score": rule.min_sentence_score,
        "declined_unanswerable": round(sum(not d.answerable for d, a in zip(decisions, labels, strict=True)
                                           if not a) / max(1, len(unanswerable)), 4),
        "false_declines": round(sum(not d.answerable for d, a in zip(decisions, labels, strict=True) if a)
                                / max(1, len(answerable)), 4),
        "reasons": {kind: dict(Counter(d.reason for d, a in zip(decisions, labels, strict=True) if a == want))
                    for kind, want in (("answerable", True), ("unanswerable", False))}}
    report["rule_for_90pct"] = rule_rates(signal, share, sentence, labels,
                                          best_rule(signal, share, sentence, labels, 0.9))
    report["rule_two_fold"] = two_fold_rule(signal, share, sentence, labels, 0.9)
    off = (2.0,)  # the rule without the sentence check, for comparison
    report["lexical_rule_for_90pct"] = rule_rates(signal, share, sentence, labels,
                                                  best_rule(signal, share, sentence, labels, 0.9, off))
    report["lexical_rule_two_fold"] = two_fold_rule(signal, share, sentence, labels, 0.9, off)
    pos = [s for s, q in zip(signal, questions, strict=True) if q.answerable]
    neg = [s for s, q in zip(signal, questions, strict=True) if not q.answerable]
    report["floor_for_90pct"] = lowest_floor(pos, neg, 0.9)
    report["floor_alone"] = decline_rates(pos, neg, report["floor_for_90pct"])
    report["floor_two_fold"] = two_fold_floor(signal, labels, 0.9)
    report["floor_sweep"] = [decline_rates(pos, neg, f) for f in floors]
    report["misses"] = [{"text": q.text, "want": list(q.docs), "got": doc_ranking(h)[:3],
                         "similarity": round(s, 3)}
                        for q, h, s in zip(questions, hits_by_name["fused"], signal, strict=True)
                        if q.answerable and not set(q.docs) & set(doc_ranking(h)[:3])]
    report["wrongly_declined"] = [_decision_row(q, h, d) for q, h, d in
                                  zip(questions, hits_by_name["fused"], decisions, strict=True)
                                  if q.answerable and not d.answerable]
    report["not_declined"] = [_decision_row(q, h, d) for q, h, d in
                              zip(questions, hits_by_name["fused"], decisions, strict=True)
                              if not q.answerable and d.answerable]
    app_retriever = faq_retriever(settings, emb, index)
    texts = [q.text for q in questions]
    app_retriever.search(texts[0], top_k)  # warm up: model load, BM25 build
    latency: dict[str, Any] = {"load_avg_1m_before": round(os.getloadavg()[0], 2),
                               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    for name, retriever in (("fused", app_retriever), ("dense", retrievers["dense"]), ("bm25", retrievers["bm25"])):
        latency[name] = _stats(*timed(lambda q, r=retriever: r.search(q, top_k), texts, repeats=2))
    # the rule's own cost on the app's hits: tokenizing, and when the sentence check runs embedding the
    # question and (once per passage, then kept) the passages' sentences. Cold: a fresh process, nothing
    # embedded yet; warm: the same questions again. "faq": retrieval and decision together as the FAQ
    # handler runs them (warm; the question's vector comes from the retriever, not a second embedding).
    top_hits = {q.text: h for q, h in zip(questions, top, strict=True)}
    content_terms.cache_clear()
    fresh = SentenceSimilarity(emb)
    latency["decide_cold"] = _stats(*timed(lambda q: rule.decide(q, top_hits[q], fresh), texts), digits=3)
    latency["decide_warm"] = _stats(*timed(lambda q: rule.decide(q, top_hits[q], fresh), texts), digits=3)
    latency["faq"] = _stats(*timed(lambda q: rule.decide(q, app_retriever.search(q, top_k), fresh,
                                                         query_vector(app_retriever, q)), texts, repeats=2))
    latency["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    report["latency"] = latency
    return report


def fusion_sweep(dense: Any, lexical: Any, questions: list[LabelledQuestion], candidates: int,
                 ks: Sequence[float] = (1, 5, 10, 30, 60), weights: Sequence[float] = (1.0, 1.5, 2.0, 3.0),
                 ) -> list[dict[str, Any]]:
    """hit@1/hit@3/MRR of the fusion (the app's ``rrf``) for each RRF constant and dense weight."""
    from knowledge_base.retriever import rrf

    texts = [q.text for q in questions]
    d_hits = dense.search_batch(texts, candidates)
    l_hits = lexical.search_batch(texts, candidates)
    doc_of = {h.chunk_id: h.doc_id for hits in (*d_hits, *l_hits) for h in hits}
    cosine = [{h.chunk_id: h.similarity for h in hits} for hits in d_hits]
    out = []
    for k in ks:
        for w in weights:
            rankings = []
            for d, lx, cos in zip(d_hits, l_hits, cosine, strict=True):
                fused = rrf([[h.chunk_id for h in d], [h.chunk_id for h in lx]], (w, 1.0), k)
                order = sorted(fused, key=lambda c, f=fused, cs=cos: (-f[c], -cs.get(c, -1.0), c))
                rankings.append(list(dict.fromkeys(doc_of[c] for c in order)))
            out.append({"rrf_k": k, "dense_weight": w, **ranking_metrics(rankings, [q.docs for q in questions])})
    return out


def print_report(r: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    q = r["questions"]
    out.write(f"retrieval benchmark: {q['answerable']} answerable + {q['unanswerable']} unanswerable questions, "
              f"{r['chunks']} chunks, embedder {r['embedder']}\n\n")
    out.write(f"{'retriever':<10}{'hit@1':>8}{'hit@3':>8}{'MRR':>8}\n")
    for name in ("dense", "bm25", "fused"):
        m = r[name]
        out.write(f"{name:<10}{m['hit@1']:>8.3f}{m['hit@3']:>8.3f}{m['mrr']:>8.3f}\n")
    best = max(r["fusion_sweep"], key=lambda x: (x["hit@3"], x["mrr"]))
    out.write(f"fusion sweep: best hit@3 {best['hit@3']:.3f} / MRR {best['mrr']:.3f} at rrf_k={best['rrf_k']}, "
              f"dense_weight={best['dense_weight']} (of {len(r['fusion_sweep'])} settings)\n")
    a, k = r["answerability"], r["settings"]["retrieval_top_k"]
    out.write(f"\nanswerability rule (best cosine among the top {k} fused hits >= {a['accept_score']}: answer; "
              f"< {a['min_score']}: decline; between: answer when >= {a['min_coverage']:.0%} of the question's "
              f"content words are in those hits or one of their sentences has cosine >= "
              f"{a['min_sentence_score']}): {a['declined_unanswerable']:.1%} of unanswerable declined, "
              f"{a['false_declines']:.1%} of answerable wrongly declined\n")
    for key, label in (("rule", "best rule"), ("lexical_rule", "best rule without the sentence check")):
        b, tr = r[f"{key}_for_90pct"], r[f"{key}_two_fold"]
        out.write(f"{label} declining >= 90%: floor {b['min_score']}, accept {b['accept_score']}, coverage "
                  f"{b['min_coverage']}, sentence {b['min_sentence_score']} ({b['declined_unanswerable']:.1%} / "
                  f"{b['false_declines']:.1%}); chosen on one half and measured on the other: "
                  f"{tr['declined_unanswerable']:.1%} declined, {tr['false_declines']:.1%} wrongly declined\n")
    fa, tf = r["floor_alone"], r["floor_two_fold"]
    out.write(f"cosine floor alone, lowest declining >= 90%: {r['floor_for_90pct']} ({fa['declined_unanswerable']:.1%}"
              f" / {fa['false_declines']:.1%}); chosen on one half and measured on the other: "
              f"{tf['declined_unanswerable']:.1%} declined, {tf['false_declines']:.1%} wrongly declined\n")
    out.write("sweep: " + "  ".join(f"{x['floor']}: {x['declined_unanswerable']:.0%}/{x['false_declines']:.0%}"
                                    for x in r["floor_sweep"]) + "  (declined / wrongly declined)\n")
    lat = r["latency"]
    for name, label in (("fused", "fused"), ("dense", "dense"), ("bm25", "bm25"), ("faq", "fused + answerability"),
                        ("decide_cold", "answerability alone, cold"), ("decide_warm", "answerability alone, warm")):
        x = lat[name]
        out.write(f"latency {label:<26} p50 {x['p50_ms']:.2f} ms, p95 {x['p95_ms']:.2f} ms, max {x['max_ms']:.1f} ms, "
                  f"CPU p95 {x['cpu_p95_ms']:.2f} ms (n={x['n']})\n")
    out.write(f"(load average {lat['load_avg_1m_before']} -> {lat['load_avg_1m_after']} on {os.cpu_count()} cores, "
              f"OMP_WAIT_POLICY={lat['omp_wait_policy'] or 'unset'})\n")
    if r["misses"]:
        out.write(f"\nfused misses at 3 ({len(r['misses'])}):\n")
        for m in r["misses"]:
            out.write(f"  {m['text']!r}: want {m['want']}, got {m['got']}\n")
    for key, label in (("wrongly_declined", "answerable but declined"), ("not_declined", "unanswerable, answered")):
        if r[key]:
            out.write(f"\n{label} ({len(r[key])}):\n" + "".join(f"  {x}\n" for x in r[key]))


def main(argv: Sequence[str] | None = None) -> int:
    from app.config import load_settings
    from app.factory import Mode

    parser = argparse.ArgumentParser(prog="python -m evals.bench_retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="test-artifacts/bench_retrieval.json", help="where to write the report")
    parser.add_argument("--fake-models", action="store_true", help="hashing embedder instead of MiniLM")
    parser.add_argument("--floor", type=float, default=None, help="override retrieval_min_score")
    parser.add_argument("--accept", type=float, default=None, help="override retrieval_accept_score")
    parser.add_argument("--coverage", type=float, default=None, help="override retrieval_min_coverage")
    parser.add_argument("--sentence", type=float, default=None, help="override retrieval_min_sentence_score")
    parser.add_argument("--rrf-k", type=float, default=None, help="override retrieval_rrf_k")
    parser.add_argument("--candidates", type=int, default=None, help="override retrieval_candidates")
    parser.add_argument("--dense-weight", type=float, default=None, help="override retrieval_dense_weight")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-") as tmp:
        settings = load_settings(data_dir=tmp, chroma_host="", retrieval_min_score=args.floor,
                                 retrieval_accept_score=args.accept, retrieval_min_coverage=args.coverage,
                                 retrieval_min_sentence_score=args.sentence,
                                 retrieval_rrf_k=args.rrf_k, retrieval_candidates=args.candidates,
                                 retrieval_dense_weight=args.dense_weight)
        floors = [round(0.2 + 0.025 * i, 3) for i in range(17)]
        report = run(settings, Mode(fake_models=args.fake_models), load_questions(), floors)
    print_report(report)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    # torch's OpenMP threads spin while they wait; on a busy 2-core machine that turns a 10 ms query embedding
    # into hundreds of ms. Passive waiting must be chosen before torch loads, so only when run as a script.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())
