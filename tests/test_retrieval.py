"""Retrieval: BM25, reciprocal rank fusion and the hybrid retriever over a real (local) Chroma index.

The hashing embedder makes dense similarities checkable by hand: texts sharing words are close.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.config import load_settings
from app.errors import ConfigError
from app.factory import faq_retriever
from knowledge_base.answerable import query_vector
from knowledge_base.bm25 import BM25, stem, tokenize
from knowledge_base.embedder import HashingEmbedder
from knowledge_base.index import ChromaIndex
from knowledge_base.loader import load_chunks
from knowledge_base.retriever import DenseRetriever, HybridRetriever, LexicalRetriever, RecentVectors, rrf
from tests.test_index import write


# ---- BM25 -----------------------------------------------------------------------------------------
def test_stemming_maps_a_shoppers_word_and_the_articles_word_together():
    assert {stem(w) for w in ("shipping", "shipped", "ships", "ship")} == {"ship"}
    assert stem("charged") == stem("charges") == stem("charge")
    assert stem("cancelled") == stem("cancel") and stem("batteries") == stem("battery")
    assert stem("address") == "address" and stem("status") == "status"  # no plural to cut
    assert tokenize("Where is MY order?") == ["order"]  # function words carry no topic


def test_bm25_scores_by_hand():
    bm = BM25(["gift card balance", "card payment declined declined", "return label"], k1=1.2, b=0.0)
    # b=0: no length normalisation; idf = ln(1 + (N - n + 0.5) / (n + 0.5))
    idf_card, idf_declin = math.log(1 + 1.5 / 2.5), math.log(1 + 2.5 / 1.5)
    scores = bm.scores("declined card")
    assert scores[0] == pytest.approx(idf_card)  # tf 1: tf*(k1+1)/(tf+k1) = 1
    assert scores[1] == pytest.approx(idf_card + idf_declin * 2 * 2.2 / (2 + 1.2))
    assert 2 not in scores  # shares no term
    assert [i for i, _ in bm.top("declined card", 5)] == [1, 0]


def test_bm25_prefers_the_rare_term():
    bm = BM25(["order order shipping", "order tty relay", "order shipping"])
    assert bm.top("tty order", 1)[0][0] == 1


def test_rrf_adds_weighted_reciprocal_ranks():
    fused = rrf([["a", "b", "c"], ["c", "d"]], (2.0, 1.0), k=5)
    assert fused["a"] == pytest.approx(2 / 6)
    assert fused["c"] == pytest.approx(2 / 8 + 1 / 6)
    assert fused["d"] == pytest.approx(1 / 7)
    assert sorted(fused, key=fused.get, reverse=True) == ["c", "a", "b", "d"]  # found by both: first


# ---- retrievers over a real index ---------------------------------------------------------------
@pytest.fixture()
def index(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping", times="Standard takes 3-5 business days.")
    write(docs, "tty", "Phone support", times="Call us through a TTY relay service any weekday.")
    write(docs, "gift", "Gift cards", times="Gift cards never expire and work on every order.")
    idx = ChromaIndex("retrieval", path=tmp_path / "chroma")
    idx.sync(load_chunks(docs), HashingEmbedder())
    idx.docs = docs  # type: ignore[attr-defined]
    return idx


def test_lexical_only_hits_keep_their_true_cosine(index):
    emb = HashingEmbedder()
    query = "costs weekday"  # dense top-1: the shipping Costs chunk; BM25 top-1: the TTY chunk (weekday)
    dense_top = DenseRetriever(index, emb).search(query, 1)[0]
    lexical_top = LexicalRetriever(index).search(query, 1)[0]
    assert dense_top.chunk_id != lexical_top.chunk_id
    hits = HybridRetriever(index, emb, rrf_k=5, candidates=1).search(query, 5)
    assert {h.chunk_id for h in hits} == {dense_top.chunk_id, lexical_top.chunk_id}
    snap = index.snapshot()
    vector = emb.embed([query])[0]
    for h in hits:
        assert h.similarity == pytest.approx(float(snap.vectors[snap.row[h.chunk_id]] @ vector), abs=1e-5)
    only_lexical = next(h for h in hits if h.chunk_id == lexical_top.chunk_id)
    assert only_lexical.lexical == pytest.approx(lexical_top.lexical) and only_lexical.lexical > 0


def test_fusion_ranks_first_what_both_rankings_agree_on(index):
    emb = HashingEmbedder()
    dense = DenseRetriever(index, emb).search("gift cards expire", 3)
    lexical = LexicalRetriever(index).search("gift cards expire", 3)
    fused = HybridRetriever(index, emb, rrf_k=5, candidates=3).search("gift cards expire", 3)
    assert dense[0].doc_id == lexical[0].doc_id == fused[0].doc_id == "gift"
    assert lexical[0].similarity == 0.0 and lexical[0].score == lexical[0].lexical > 0
    assert dense[0].score == dense[0].similarity


def test_search_batch_equals_one_by_one(index):
    hybrid = HybridRetriever(index, HashingEmbedder(), rrf_k=5, candidates=4)
    queries = ["tty relay", "how long is standard shipping", "gift card"]
    batched = hybrid.search_batch(queries, 2)
    assert [[h.chunk_id for h in hits] for hits in batched] == \
        [[h.chunk_id for h in hybrid.search(q, 2)] for q in queries]
    assert hybrid.search_batch([], 2) == []


def test_dense_and_hybrid_keep_the_last_query_vectors_for_the_answerability_check(index):
    emb = HashingEmbedder()
    for retriever in (DenseRetriever(index, emb), HybridRetriever(index, emb, rrf_k=5, candidates=4)):
        retriever.search_batch(["gift card", "tty relay"], 2)
        assert retriever.query_vector("gift card") == pytest.approx(emb.embed(["gift card"])[0])
        assert retriever.query_vector("never searched") is None
        assert query_vector(retriever, "tty relay") is not None
    assert query_vector(LexicalRetriever(index), "gift card") is None  # BM25 has no vectors


def test_recent_vectors_forget_the_oldest_beyond_their_size():
    recent = RecentVectors(size=2)
    recent.remember(["a", "b"], np.eye(2))
    recent.remember(["a"], np.eye(2)[:1])  # seen again: now the newest
    recent.remember(["c"], np.eye(2)[1:])
    assert recent.get("b") is None and recent.get("a") is not None and recent.get("c") is not None


def test_bm25_follows_reindexing_in_this_process_and_by_another(index, tmp_path):
    emb = HashingEmbedder()
    hybrid = HybridRetriever(index, emb, rrf_k=5, candidates=10)
    assert not hybrid.lexical.ranked("kayak rental", 3)
    write(index.docs, "kayak", "Kayak rental", times="Kayak rental starts at the Reno counter.")
    index.sync(load_chunks(index.docs), emb)  # same index object: the snapshot is dropped
    assert hybrid.search("kayak rental", 1)[0].doc_id == "kayak"
    # another client (another process) edits the collection: the retriever sees an unknown dense id and re-reads
    write(index.docs, "tty", "Phone support", times="Relay calls now go through our video relay partner.")
    ChromaIndex("retrieval", path=tmp_path / "chroma").sync(load_chunks(index.docs), emb)
    hits = hybrid.search("video relay partner", 3)
    assert any("video relay partner" in h.text for h in hits)
    assert all(h.chunk_id in index.snapshot().row for h in hits)


def test_factory_builds_the_configured_retriever(index, tmp_path):
    emb = HashingEmbedder()
    base = load_settings(data_dir=str(tmp_path))
    assert isinstance(faq_retriever(base, emb, index), HybridRetriever)
    assert isinstance(faq_retriever(base.replace(retrieval_mode="dense"), emb, index), DenseRetriever)
    assert isinstance(faq_retriever(base.replace(retrieval_mode="bm25"), emb, index), LexicalRetriever)
    with pytest.raises(ConfigError, match="hybrid, dense or bm25"):
        load_settings(data_dir=str(tmp_path), retrieval_mode="sparse")
