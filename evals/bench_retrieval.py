"""Retrieval benchmark on the labelled shopper questions (knowledge_base/questions/*.yaml).

    python -m evals.bench_retrieval [--json FILE] [--fake-models] [--floor X] [--rrf-k K]

Builds a throw-away index of the repo's articles, then reports for dense, BM25 and fused retrieval:
hit@1, hit@3 and MRR@10 over distinct articles (a hit is any article labelled as answering the
question); for the relevance floor, the share of unanswerable questions declined and of answerable
ones wrongly declined, with a sweep of thresholds; and per-query latency of the configured retriever
(retrieval only: embedding the query, Chroma, BM25, fusion). Prints a table and writes a JSON report.
Targets (issue 6): fused hit@3 >= 0.95 and better than each alone, >= 90% of unanswerable questions
declined, p95 <= 30 ms on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from knowledge_base.labelled import LabelledQuestion, load_questions

DEPTH = 10  # ranks looked at for MRR (and candidates asked of each retriever)


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


def relevance(hits: Sequence[Any], top_k: int) -> float:
    """The floor's signal: the best cosine among the hits the FAQ handler looks at (app/faq.py)."""
    return max((h.similarity for h in hits[:top_k]), default=0.0)


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
    signal = [relevance(h, top_k) for h in hits_by_name["fused"]]
    pos = [s for s, q in zip(signal, questions, strict=True) if q.answerable]
    neg = [s for s, q in zip(signal, questions, strict=True) if not q.answerable]
    report["floor"] = decline_rates(pos, neg, settings.retrieval_min_score)
    report["floor_for_90pct"] = lowest_floor(pos, neg, 0.9)
    report["floor_two_fold"] = two_fold_floor(signal, [q.answerable for q in questions], 0.9)
    report["floor_sweep"] = [decline_rates(pos, neg, f) for f in floors]
    report["misses"] = [{"text": q.text, "want": list(q.docs), "got": doc_ranking(h)[:3],
                         "similarity": round(s, 3)}
                        for q, h, s in zip(questions, hits_by_name["fused"], signal, strict=True)
                        if q.answerable and not set(q.docs) & set(doc_ranking(h)[:3])]
    report["wrongly_declined"] = [{"text": q.text, "similarity": round(s, 3)} for q, s in
                                  zip(questions, signal, strict=True)
                                  if q.answerable and s < settings.retrieval_min_score]
    report["not_declined"] = [{"text": q.text, "top": h[0].doc_id if h else "", "similarity": round(s, 3)}
                              for q, h, s in zip(questions, hits_by_name["fused"], signal, strict=True)
                              if not q.answerable and s >= settings.retrieval_min_score]
    app_retriever = faq_retriever(settings, emb, index)
    texts = [q.text for q in questions]
    app_retriever.search(texts[0], settings.retrieval_top_k)  # warm up: model load, BM25 build
    latency: dict[str, Any] = {"load_avg_1m_before": round(os.getloadavg()[0], 2),
                               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    for name, retriever in (("fused", app_retriever), ("dense", retrievers["dense"]), ("bm25", retrievers["bm25"])):
        ms, cpu = timed(lambda q, r=retriever: r.search(q, settings.retrieval_top_k), texts, repeats=2)
        latency[name] = {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 0.95), 2),
                         "max_ms": round(max(ms), 2), "cpu_p95_ms": round(percentile(cpu, 0.95), 2), "n": len(ms)}
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
    f = r["floor"]
    out.write(f"\nrelevance floor {f['floor']} (best cosine among the top {r['settings']['retrieval_top_k']} fused "
              f"hits): {f['declined_unanswerable']:.1%} of unanswerable declined, "
              f"{f['false_declines']:.1%} of answerable wrongly declined\n")
    tf = r["floor_two_fold"]
    out.write(f"lowest floor declining >= 90%: {r['floor_for_90pct']}; chosen on one half and measured on the "
              f"other: {tf['declined_unanswerable']:.1%} declined, {tf['false_declines']:.1%} wrongly declined\n")
    out.write("sweep: " + "  ".join(f"{x['floor']}: {x['declined_unanswerable']:.0%}/{x['false_declines']:.0%}"
                                    for x in r["floor_sweep"]) + "  (declined / wrongly declined)\n")
    lat = r["latency"]
    for name in ("fused", "dense", "bm25"):
        x = lat[name]
        out.write(f"latency {name:<6} p50 {x['p50_ms']:.1f} ms, p95 {x['p95_ms']:.1f} ms, max {x['max_ms']:.1f} ms, "
                  f"CPU p95 {x['cpu_p95_ms']:.1f} ms (n={x['n']})\n")
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
    parser.add_argument("--rrf-k", type=float, default=None, help="override retrieval_rrf_k")
    parser.add_argument("--candidates", type=int, default=None, help="override retrieval_candidates")
    parser.add_argument("--dense-weight", type=float, default=None, help="override retrieval_dense_weight")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-") as tmp:
        settings = load_settings(data_dir=tmp, chroma_host="", retrieval_min_score=args.floor,
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
