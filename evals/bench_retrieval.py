"""Retrieval benchmark on the labelled shopper questions (knowledge_base/questions/*.yaml).

    python -m evals.bench_retrieval [--json FILE] [--fake-models] [--fit] [--model FILE] [--floor X]
                                    [--rrf-k K] [--candidates N] [--dense-weight W]

Builds a throw-away index of the repo's articles, then reports for dense, BM25 and fused retrieval:
hit@1, hit@3 and MRR@10 over distinct articles (a hit is any article labelled as answering the
question); for the answerability rule (knowledge_base/answerable.py: a cosine floor, then a logistic
regression over the best cosine, the best one-sentence cosine, the IDF-weighted share of missing
words, the word alignment and the precedent of labelled questions), the share of unanswerable
questions declined and of answerable ones wrongly declined: on the labelled questions (in sample),
leaving one writer out (the whole fitting procedure, weights, threshold and precedents, without one
writer's questions, measured on them; per writer and on average), and on the held-out questions
(knowledge_base/questions_heldout, written after the model was fitted, never learned from); the same
for the cosine floor alone, for comparison; and per-query latency of the configured retriever
(retrieval only: embedding the query, Chroma, BM25, fusion) and of the rule's decision. Prints a table
and writes a JSON report.

``--fit`` first fits the model on the labelled questions (knowledge_base/answer_model.py: threshold
chosen on leave-one-writer-out probabilities so that writers decline on average >= 90% of their
unanswerable questions) and writes it to
``--model`` (default: the bundled knowledge_base/answer_model.json), then measures it.
Targets (issue 6): fused hit@3 >= 0.95 and better than each alone, >= 90% of unanswerable questions
declined out of sample with few false declines, p95 <= 30 ms on 2 CPU cores.
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base import answer_model
from knowledge_base.answerable import AnswerRule, SentenceSimilarity, content_terms, evidence, query_vector, vocabulary
from knowledge_base.labelled import QUESTIONS_DIR, LabelledQuestion, load_questions
from knowledge_base.precedents import load_precedents, margins, same_words

DEPTH = 10  # ranks looked at for MRR (and candidates asked of each retriever)
HELDOUT_DIR = QUESTIONS_DIR.parent / "questions_heldout"
GOAL = 0.9  # issue 6: at least this share of unanswerable questions declined, out of sample
# the share of unanswerable questions the fitted threshold declines, leaving one writer out (--target): aimed
# above the goal, as one new writer's rate varies about it (aimed at 90%, 8 writers left out one at a time
# ranged 80-97%, standard deviation 6 points); measured, the margin costs 1.3 points more of a writer's
# answerable questions wrongly declined (leaving one of 9 writers out: 5.1% aimed at 90%, 6.4% at 92%)
TARGET = 0.92
# the same for the fallback model, which decides where the precedents are silent (a section written after
# they were labelled; --fallback-target): without them declining 90% costs 29% of answerable questions
# (cross-validated), 80% costs 15%; after a shop changes its help centre, answering is preferred
FALLBACK_TARGET = 0.8


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


def _decision_row(q: LabelledQuestion, hits: Sequence[Any], d: Any) -> dict[str, Any]:
    features = {k: round(v, 3) for k, v in (d.features or {}).items()}
    return {"text": q.text, "top": hits[0].doc_id if hits else "", "similarity": round(d.similarity, 3),
            **features, "probability": None if d.probability is None else round(d.probability, 3),
            "reason": d.reason}


def rates(declined: Sequence[bool], labels: Sequence[bool]) -> dict[str, float]:
    """Share of unanswerable questions declined and of answerable ones declined."""
    neg = [d for d, a in zip(declined, labels, strict=True) if not a]
    pos = [d for d, a in zip(declined, labels, strict=True) if a]
    return {"declined_unanswerable": round(sum(neg) / max(1, len(neg)), 4),
            "false_declines": round(sum(pos) / max(1, len(pos)), 4)}


def _stats(ms: Sequence[float], cpu: Sequence[float], digits: int = 2) -> dict[str, Any]:
    return {"p50_ms": round(statistics.median(ms), digits), "p95_ms": round(percentile(ms, 0.95), digits),
            "max_ms": round(max(ms), digits), "cpu_p95_ms": round(percentile(cpu, 0.95), digits), "n": len(ms)}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[str], object], queries: Sequence[str], repeats: int = 1,
          before: Callable[[str], object] | None = None) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds per call (CPU time shows what waiting for cores hides);
    ``before`` runs ahead of each call, untimed."""
    wall, cpu = [], []
    for _ in range(repeats):
        for q in queries:
            if before is not None:
                before(q)
            started, cpu_started = time.perf_counter(), time.process_time()
            fn(q)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    return wall, cpu


def run(settings: Any, mode: Any, questions: list[LabelledQuestion], floors: Sequence[float],
        heldout: Sequence[LabelledQuestion] = (), fit_to: Path | None = None, target: float = TARGET,
        fallback_target: float = FALLBACK_TARGET) -> dict[str, Any]:
    """``fit_to``: fit the answerability model on ``questions`` first and write it there (then measured)."""
    emb, index, retrievers, index_s = build_retrievers(settings, mode)
    answerable = [q for q in questions if q.answerable]
    report: dict[str, Any] = {"questions": {"answerable": len(answerable),
                                            "unanswerable": len(questions) - len(answerable)},
                              "embedder": emb.name, "chunks": index.count(), "index_s": round(index_s, 2)}
    hits_by_name = {}
    for name, retriever in retrievers.items():
        hits = retriever.search_batch([q.text for q in questions], DEPTH)
        hits_by_name[name] = hits
        rankings = [doc_ranking(h) for h, q in zip(hits, questions, strict=True) if q.answerable]
        report[name] = ranking_metrics(rankings, [q.docs for q in answerable])
    report["fusion_sweep"] = fusion_sweep(retrievers["dense"], retrievers["bm25"], answerable,
                                          settings.retrieval_candidates)
    top_k, floor = settings.retrieval_top_k, settings.retrieval_min_score
    vocab, sentences = vocabulary(retrievers["fused"]), SentenceSimilarity(emb)
    labels = [q.answerable for q in questions]
    top = [h[:top_k] for h in hits_by_name["fused"]]
    precedents = load_precedents(settings.retrieval_precedents)  # each question left out of its own
    features = [evidence(q.text, h, sentences, None, vocab, precedents) for q, h in zip(questions, top, strict=True)]
    writers = writer_folds(questions, features, emb)
    cross = answer_model.cross_validate(features, labels, target, floor, writers=writers)
    if fit_to is not None:
        model = answer_model.fit(features, labels, emb.name, target, floor, fallback_target=fallback_target,
                                 writers=writers, about={
            "fitted_by": f"python -m evals.bench_retrieval --fit --target {target} --fallback-target {fallback_target}",
            "how": "logistic regression (L2, C=1, balanced classes) on standardised features; threshold from "
                   "leave-one-writer-out probabilities (each writer's questions scored by a model fitted on the "
                   "others', the others' questions alone as precedents): the lowest at which writers decline on "
                   "average >= target of their unanswerable questions; precedent: each labelled question scored "
                   "without itself (leave-one-out)",
            "questions": report["questions"], "floor": floor, "target": target, "cross_validation": cross})
        model.save(fit_to)
        settings = settings.replace(retrieval_answer_model=str(fit_to))
    rule = AnswerRule.from_settings(settings)
    report["settings"] = {k: getattr(settings, k) for k in (
        "retrieval_mode", "retrieval_top_k", "retrieval_min_score", "retrieval_answer_model",
        "retrieval_candidates", "retrieval_rrf_k", "retrieval_dense_weight")}
    decisions = [rule.decide(q.text, h, sentences, None, vocab) for q, h in zip(questions, top, strict=True)]
    model = rule.model
    report["answerability"] = {
        "min_score": rule.min_score, "model_applies": rule.applies(sentences),
        "model": None if model is None else {k: getattr(model, k) for k in (
            "features", "weights", "intercept", "threshold", "embedder")} | {
            "fallback": None if model.fallback is None else {k: getattr(model.fallback, k) for k in (
                "features", "weights", "intercept", "threshold", "about")}},
        **rates([not d.answerable for d in decisions], labels),
        "reasons": {kind: dict(Counter(d.reason for d, a in zip(decisions, labels, strict=True) if a == want))
                    for kind, want in (("answerable", True), ("unanswerable", False))}}
    report["cross_validation"] = cross
    signal = [relevance(h, top_k) for h in top]
    pos = [s for s, q in zip(signal, questions, strict=True) if q.answerable]
    neg = [s for s, q in zip(signal, questions, strict=True) if not q.answerable]
    report["floor_for_90pct"] = lowest_floor(pos, neg, GOAL)
    report["floor_alone"] = decline_rates(pos, neg, report["floor_for_90pct"])
    report["floor_two_fold"] = two_fold_floor(signal, labels, GOAL)
    report["floor_sweep"] = [decline_rates(pos, neg, f) for f in floors]
    report["heldout"] = heldout_rates(rule, retrievers["fused"], heldout, top_k, sentences, vocab,
                                      report["floor_for_90pct"])
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
    report["latency"] = latency(settings, emb, index, retrievers, rule, questions, top)
    return report


def writer_folds(questions: Sequence[LabelledQuestion], rows: Sequence[Mapping[str, float]],
                 embedder: Any) -> answer_model.Writers:
    """The labelled questions' writers and their rows (``evidence``, with the questions themselves as
    precedents) re-scored without some writers' questions as precedents: the folds of the answerability
    model's writer-out validation (knowledge_base/answer_model.py)."""
    vectors = np.asarray(embedder.embed([q.text for q in questions]), dtype=np.float32)
    similarity = vectors @ vectors.T
    keys = np.array([same_words(q.text) for q in questions], dtype=object)
    others = keys[:, None] != keys[None, :]  # a question is never its own precedent
    answerable = np.array([q.answerable for q in questions], dtype=bool)
    names = tuple(q.writer for q in questions)

    def rescore(left_out: frozenset[str]) -> list[Mapping[str, float]]:
        counted = others & ~np.isin(np.array(names, dtype=object), list(left_out))[None, :]
        # NaN where the writers left have labelled only one kind: no evidence either way, as 0 (near the mean)
        score = np.nan_to_num(margins(similarity, answerable, counted), nan=0.0)
        return [{**r, "precedent": float(v)} if "precedent" in r else r for r, v in zip(rows, score, strict=True)]

    return answer_model.Writers(names, rescore)


def build_retrievers(settings: Any, mode: Any) -> tuple[Any, Any, dict[str, Any], float]:
    """The embedder, an index of the repo's articles (built in ``settings.data_dir``), the dense, BM25 and
    fused retrievers over it, and the seconds indexing took."""
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
    return emb, index, retrievers, index_s


def heldout_rates(rule: AnswerRule, retriever: Any, heldout: Sequence[LabelledQuestion], top_k: int,
                  sentences: SentenceSimilarity, vocab: Any, floor: float) -> dict[str, Any]:
    """The rule on questions no threshold or weight was chosen on (and the cosine floor alone, for comparison)."""
    if not heldout:
        return {"n": 0}
    hits = retriever.search_batch([q.text for q in heldout], top_k)
    decisions = [rule.decide(q.text, h, sentences, None, vocab) for q, h in zip(heldout, hits, strict=True)]
    labels = [q.answerable for q in heldout]
    return {"n": len(heldout), **rates([not d.answerable for d in decisions], labels),
            "floor_alone": {"floor": floor, **rates([relevance(h, top_k) < floor for h in hits], labels)},
            "wrong": [_decision_row(q, h, d) for q, h, d in zip(heldout, hits, decisions, strict=True)
                      if d.answerable != q.answerable]}


def latency(settings: Any, emb: Any, index: Any, retrievers: dict[str, Any], rule: AnswerRule,
            questions: Sequence[LabelledQuestion], top: Sequence[Sequence[Any]]) -> dict[str, Any]:
    from app.factory import faq_retriever

    top_k = settings.retrieval_top_k
    app_retriever = faq_retriever(settings, emb, index)
    texts = [q.text for q in questions]
    app_retriever.search(texts[0], top_k)  # warm up: model load, BM25 build
    vocab = vocabulary(app_retriever)
    out: dict[str, Any] = {"load_avg_1m_before": round(os.getloadavg()[0], 2),
                           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    # every timing embeds the question afresh: the embedder forgets the messages it embedded lately
    # (knowledge_base/embedder.py, RecentEmbeddings) before each call, unless said otherwise
    forget = getattr(emb, "forget", None)
    unembedded = (lambda _q: forget()) if forget is not None else None
    for name, retriever in (("fused", app_retriever), ("dense", retrievers["dense"]), ("bm25", retrievers["bm25"])):
        out[name] = _stats(*timed(lambda q, r=retriever: r.search(q, top_k), texts, repeats=2, before=unembedded))
    # the rule's own cost on the app's hits: tokenizing, embedding the question, and (once per passage, then
    # kept) the passages' sentences. Cold: a fresh process, nothing embedded yet; warm: the same questions
    # again. "faq": retrieval and decision together as the FAQ handler runs them (one embedding of the
    # question serves both); "faq_after_classify": the same once the intent classifier, which runs first
    # on the same embedder, has embedded the message (as in the app).
    top_hits = {q.text: h for q, h in zip(questions, top, strict=True)}
    content_terms.cache_clear()
    fresh = SentenceSimilarity(emb)
    decide = lambda q: rule.decide(q, top_hits[q], fresh, None, vocab)  # noqa: E731
    out["decide_cold"] = _stats(*timed(decide, texts, before=unembedded), digits=3)
    out["decide_warm"] = _stats(*timed(decide, texts, before=unembedded), digits=3)
    faq = lambda q: rule.decide(q, app_retriever.search(q, top_k), fresh, query_vector(app_retriever, q), vocab)  # noqa: E731
    out["faq"] = _stats(*timed(faq, texts, repeats=2, before=unembedded))
    if forget is not None:
        out["faq_after_classify"] = _stats(*timed(faq, texts, repeats=2,
                                                  before=lambda q: (forget(), emb.embed([q]))))
    out["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return out


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


def cross_validation_line(cv: Mapping[str, Any]) -> str:
    """What ``answer_model.cross_validate`` measured, in a line (by writer: each writer's rates after it)."""
    if cv.get("folds") != "writer":
        return (f"{cv['folds']}-fold cross-validation x {cv['repeats']} (weights and threshold fitted without the "
                f"fold): {cv['declined_unanswerable']:.1%} declined, {cv['false_declines']:.1%} wrongly declined")
    each = ", ".join(f"{name} {w['declined']}/{w['unanswerable']} | {w['wrongly_declined']}/{w['answerable']}"
                     for name, w in cv["writers"].items())
    return (f"leave one writer out ({len(cv['writers'])} writers; weights, threshold and precedents without the "
            f"writer): mean over writers {cv['declined_unanswerable']:.1%} declined, {cv['false_declines']:.1%} "
            f"wrongly declined (all questions: {cv['pooled']['declined_unanswerable']:.1%} / "
            f"{cv['pooled']['false_declines']:.1%}); per writer declined | wrongly: {each}")


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
    a, k, cv, ho = r["answerability"], r["settings"]["retrieval_top_k"], r["cross_validation"], r["heldout"]
    model = a["model"] or {}
    how = (f"logistic regression over {', '.join(model.get('features', ()))}, answer from probability "
           f"{model.get('threshold', 0):.3f}" if a["model_applies"] else "the cosine floor alone (no model applies)")
    out.write(f"\nanswerability rule (top {k} fused hits; best cosine < {a['min_score']}: decline; else {how}):\n"
              f"  in sample: {a['declined_unanswerable']:.1%} of unanswerable declined, "
              f"{a['false_declines']:.1%} of answerable wrongly declined\n"
              f"  {cross_validation_line(cv)}\n")
    fb = (model.get("fallback") or {}) if a["model_applies"] else {}
    if fb:
        fcv = fb["about"].get("cross_validation", {})
        out.write(f"  without a precedent (hits the labelled questions do not know): its fallback over "
                  f"{', '.join(fb['features'])}, threshold {fb['threshold']:.3f}, cross-validated "
                  f"{fcv.get('declined_unanswerable', 0):.1%} declined, {fcv.get('false_declines', 0):.1%} wrongly\n")
    if ho["n"]:
        fl = ho["floor_alone"]
        out.write(f"  held-out questions ({ho['n']}, {HELDOUT_DIR.name}): {ho['declined_unanswerable']:.1%} "
                  f"declined, {ho['false_declines']:.1%} wrongly declined (cosine floor {fl['floor']} alone: "
                  f"{fl['declined_unanswerable']:.1%} / {fl['false_declines']:.1%})\n")
    fa, tf = r["floor_alone"], r["floor_two_fold"]
    out.write(f"cosine floor alone, lowest declining >= 90%: {r['floor_for_90pct']} ({fa['declined_unanswerable']:.1%}"
              f" / {fa['false_declines']:.1%}); chosen on one half and measured on the other: "
              f"{tf['declined_unanswerable']:.1%} declined, {tf['false_declines']:.1%} wrongly declined\n")
    out.write("sweep: " + "  ".join(f"{x['floor']}: {x['declined_unanswerable']:.0%}/{x['false_declines']:.0%}"
                                    for x in r["floor_sweep"]) + "  (declined / wrongly declined)\n")
    lat = r["latency"]
    for name, label in (("fused", "fused"), ("dense", "dense"), ("bm25", "bm25"), ("faq", "fused + answerability"),
                        ("faq_after_classify", "the same, message embedded"),
                        ("decide_cold", "answerability alone, cold"), ("decide_warm", "answerability alone, warm")):
        if name not in lat:
            continue
        x = lat[name]
        out.write(f"latency {label:<26} p50 {x['p50_ms']:.2f} ms, p95 {x['p95_ms']:.2f} ms, max {x['max_ms']:.1f} ms, "
                  f"CPU p95 {x['cpu_p95_ms']:.2f} ms (n={x['n']})\n")
    out.write(f"(load average {lat['load_avg_1m_before']} -> {lat['load_avg_1m_after']} on {os.cpu_count()} cores, "
              f"OMP_WAIT_POLICY={lat['omp_wait_policy'] or 'unset'})\n")
    if r["misses"]:
        out.write(f"\nfused misses at 3 ({len(r['misses'])}):\n")
        for m in r["misses"]:
            out.write(f"  {m['text']!r}: want {m['want']}, got {m['got']}\n")
    for rows, label in ((r["wrongly_declined"], "answerable but declined"),
                        (r["not_declined"], "unanswerable, answered"),
                        (r["heldout"].get("wrong", []), "held out, wrongly decided")):
        if rows:
            out.write(f"\n{label} ({len(rows)}):\n" + "".join(f"  {x}\n" for x in rows))


def main(argv: Sequence[str] | None = None) -> int:
    from app.config import load_settings
    from app.factory import Mode

    parser = argparse.ArgumentParser(prog="python -m evals.bench_retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="test-artifacts/bench_retrieval.json", help="where to write the report")
    parser.add_argument("--fake-models", action="store_true", help="hashing embedder instead of MiniLM")
    parser.add_argument("--fit", action="store_true",
                        help="fit the answerability model on the labelled questions and write it to --model first")
    parser.add_argument("--model", default=None,
                        help=f"answerability model file (retrieval_answer_model; default {answer_model.MODEL_FILE})")
    parser.add_argument("--target", type=float, default=TARGET,
                        help=f"share of unanswerable questions the fitted threshold declines (default {TARGET})")
    parser.add_argument("--fallback-target", type=float, default=FALLBACK_TARGET,
                        help="the same for the model without precedents (default 0.8)")
    parser.add_argument("--floor", type=float, default=None, help="override retrieval_min_score")
    parser.add_argument("--rrf-k", type=float, default=None, help="override retrieval_rrf_k")
    parser.add_argument("--candidates", type=int, default=None, help="override retrieval_candidates")
    parser.add_argument("--dense-weight", type=float, default=None, help="override retrieval_dense_weight")
    args = parser.parse_args(argv)
    if args.fit and args.fake_models and not args.model:
        parser.error("--fit with --fake-models needs --model FILE (the bundled model is fitted on MiniLM)")
    fit_to = Path(args.model or answer_model.MODEL_FILE) if args.fit else None
    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-") as tmp:
        settings = load_settings(data_dir=tmp, chroma_host="", retrieval_min_score=args.floor,
                                 retrieval_answer_model=None if args.fit else args.model,
                                 retrieval_rrf_k=args.rrf_k, retrieval_candidates=args.candidates,
                                 retrieval_dense_weight=args.dense_weight)
        floors = [round(0.2 + 0.025 * i, 3) for i in range(17)]
        report = run(settings, Mode(fake_models=args.fake_models), load_questions(), floors,
                     load_questions(HELDOUT_DIR), fit_to, args.target, args.fallback_target)
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
