"""Retrieval: a query -> the best passages, each with its cosine similarity to the query.

Three retrievers behind one protocol: dense (MiniLM vectors in Chroma), lexical (BM25 over the same
stored chunks) and hybrid, which fuses the two rankings by reciprocal rank fusion (RRF). Every hit
carries the query's cosine similarity, also for chunks only BM25 found, because the FAQ handler's
relevance floor (a named setting) compares it; the floor is applied there, not here. Each also offers
the term statistics of the chunks it searches (``vocabulary``: the BM25 idf), which the answerability
check (knowledge_base/answerable.py) weighs the question's words with.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from knowledge_base.bm25 import BM25
from knowledge_base.embedder import Embedder
from knowledge_base.index import ChromaIndex, Hit, Snapshot


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: float) -> dict[str, float]:
    """Reciprocal rank fusion: ``sum_i weights[i] / (k + rank_i(id))`` over the rankings an id is in."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


class Retriever(Protocol):
    def search(self, query: str, k: int) -> list[Hit]: ...

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]: ...


class RecentVectors:
    """The vectors of the last ``size`` queries by text: the answerability check (knowledge_base/answerable.py)
    compares the question with single sentences and reuses the retriever's embedding instead of a second one."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, queries: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for query, vector in zip(queries, vectors, strict=True):
                self._vectors[query] = vector
                self._vectors.move_to_end(query)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)

    def get(self, query: str) -> np.ndarray | None:
        with self._lock:
            return self._vectors.get(query)


class _QueryEmbedding:
    """What the retrievers that embed the query share: embedding a batch of queries, and keeping their
    vectors a while (``query_vector``) so that the answerability check does not embed them again; and
    BM25 over the same chunks (``lexical``: fusion's second ranking, and the ``vocabulary``)."""

    def __init__(self, index: ChromaIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self.recent = RecentVectors()
        self.lexical = LexicalRetriever(index)

    def search(self, query: str, k: int) -> list[Hit]:
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        raise NotImplementedError

    def _embed(self, queries: Sequence[str]) -> np.ndarray:
        vectors = self.embedder.embed(list(queries))
        self.recent.remember(queries, vectors)
        return vectors

    def query_vector(self, query: str) -> np.ndarray | None:
        """The vector of a query searched lately (None if not among the last few)."""
        return self.recent.get(query)

    def vocabulary(self) -> BM25:
        return self.lexical.vocabulary()


class DenseRetriever(_QueryEmbedding):
    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        return self.index.query_batch(self._embed(queries), k)


class LexicalRetriever:
    """BM25 over the chunks stored in the index. ``similarity`` is 0: it has no query vector."""

    def __init__(self, index: ChromaIndex) -> None:
        self.index = index
        self._snapshot: Snapshot | None = None
        self._bm25: BM25 | None = None

    def corpus(self, refresh: bool = False) -> tuple[Snapshot, BM25]:
        snapshot = self.index.snapshot(refresh=refresh)
        if snapshot is not self._snapshot or self._bm25 is None:
            self._bm25 = BM25([c.embed_text for c in snapshot.chunks])
            self._snapshot = snapshot
        return snapshot, self._bm25

    def vocabulary(self) -> BM25:
        """The BM25 index of the stored chunks: its ``idf`` per stemmed term and ``n`` chunks."""
        return self.corpus()[1]

    def ranked(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.corpus()[1].top(query, k)

    def search(self, query: str, k: int) -> list[Hit]:
        snapshot = self.corpus()[0]
        return [snapshot.hit(i, 0.0, score, score) for i, score in self.ranked(query, k)]

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]


class HybridRetriever(_QueryEmbedding):
    """Dense and BM25 rankings of chunks fused by reciprocal rank fusion (``rrf``).

    Each ranking contributes its top ``candidates``. RRF needs no calibration between cosine and BM25
    scores, only ranks; ``dense_weight`` > ``lexical_weight`` because dense retrieval is the stronger
    of the two on shopper wording (evals/bench_retrieval.py measures both and sweeps the weights).
    """

    def __init__(self, index: ChromaIndex, embedder: Embedder, rrf_k: float = 60.0, candidates: int = 20,
                 dense_weight: float = 1.0, lexical_weight: float = 1.0) -> None:
        super().__init__(index, embedder)
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.weights = (dense_weight, lexical_weight)

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        vectors = self._embed(queries)
        dense = self.index.nearest_ids(vectors, self.candidates)  # ids only: text comes from the snapshot
        snapshot, _ = self.lexical.corpus()
        if any(cid not in snapshot.row for hits in dense for cid, _ in hits):
            snapshot, _ = self.lexical.corpus(refresh=True)  # another process re-indexed: re-read
        return [self._fuse(q, v, d, snapshot, k) for q, v, d in zip(queries, vectors, dense, strict=True)]

    def _fuse(self, query: str, vector: np.ndarray, dense: list[tuple[str, float]], snapshot: Snapshot,
              k: int) -> list[Hit]:
        lexical = {snapshot.chunks[i].id: score for i, score in self.lexical.ranked(query, self.candidates)}
        cosine = {cid: similarity for cid, similarity in dense if cid in snapshot.row}
        fused = rrf([list(cosine), list(lexical)], self.weights, self.rrf_k)
        best = sorted(fused, key=lambda cid: (-fused[cid], -cosine.get(cid, -1.0), cid))[:k]
        hits = []
        for cid in best:
            row = snapshot.row[cid]
            # a chunk only BM25 found still gets its true cosine, from the stored vector
            similarity = cosine[cid] if cid in cosine else float(snapshot.vectors[row] @ vector)
            hits.append(snapshot.hit(row, similarity, fused[cid], lexical.get(cid, 0.0)))
        return hits
