"""Retrieval quality with the real bundled MiniLM on the labelled shopper questions (integration).

Quality bars only (no timing): the fused ranking must beat dense and BM25 alone, and the relevance
floor must decline most unanswerable questions. `python -m evals.bench_retrieval` prints the numbers.
"""

import pytest

from app.factory import faq_retriever
from app.faq import FaqHandler
from evals.bench_retrieval import decline_rates, doc_ranking, ranking_metrics, relevance
from knowledge_base.labelled import load_questions
from knowledge_base.retriever import DenseRetriever, LexicalRetriever

pytestmark = pytest.mark.integration
QUESTIONS = load_questions()


@pytest.fixture(scope="module")
def results(real_settings, real_models):
    texts = [q.text for q in QUESTIONS]
    fused = faq_retriever(real_settings, real_models.embedder, real_models.index)
    out = {}
    for name, retriever in (("fused", fused), ("dense", DenseRetriever(real_models.index, real_models.embedder)),
                            ("bm25", LexicalRetriever(real_models.index))):
        out[name] = retriever.search_batch(texts, 10)
    return out


def _metrics(hits):
    answerable = [(h, q) for h, q in zip(hits, QUESTIONS, strict=True) if q.answerable]
    return ranking_metrics([doc_ranking(h) for h, _ in answerable], [q.docs for _, q in answerable])


def test_fused_retrieval_beats_dense_and_bm25_alone(results):
    fused, dense, bm25 = (_metrics(results[n]) for n in ("fused", "dense", "bm25"))
    assert fused["hit@3"] >= 0.95, fused
    assert fused["hit@3"] >= max(dense["hit@3"], bm25["hit@3"]), (fused, dense, bm25)
    assert fused["mrr"] > max(dense["mrr"], bm25["mrr"]) and fused["hit@1"] > dense["hit@1"], (fused, dense)


def test_the_floor_declines_most_unanswerable_questions(results, real_settings):
    signal = [relevance(h, real_settings.retrieval_top_k) for h in results["fused"]]
    rates = decline_rates([s for s, q in zip(signal, QUESTIONS, strict=True) if q.answerable],
                          [s for s, q in zip(signal, QUESTIONS, strict=True) if not q.answerable],
                          real_settings.retrieval_min_score)
    # measured 0.871 / 0.184 at 0.45; the bars catch a regression, the benchmark reports the numbers
    assert rates["declined_unanswerable"] >= 0.85 and rates["false_declines"] <= 0.22, rates


def test_the_handler_declines_exactly_when_the_benchmark_signal_is_under_the_floor(real_settings, real_models):
    retriever = faq_retriever(real_settings, real_models.embedder, real_models.index)
    handler = FaqHandler(retriever, real_settings.retrieval_top_k, real_settings.retrieval_min_score)
    for q in QUESTIONS[::15]:
        below = relevance(retriever.search(q.text, real_settings.retrieval_top_k),
                          real_settings.retrieval_top_k) < real_settings.retrieval_min_score
        assert (handler.handle(q.text).kind == "faq_unknown") == below, q.text
