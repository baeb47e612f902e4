"""Retrieval: a query -> the best passages with similarity scores.

Dense retrieval over the Chroma index; issue 6 adds BM25 and rank fusion behind the same protocol.
The relevance floor is applied by the FAQ handler (a named setting), not here.
"""

from __future__ import annotations

from typing import Protocol

from knowledge_base.embedder import Embedder
from knowledge_base.index import ChromaIndex, Hit


class Retriever(Protocol):
    def search(self, query: str, k: int) -> list[Hit]: ...


class DenseRetriever:
    def __init__(self, index: ChromaIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def search(self, query: str, k: int) -> list[Hit]:
        vector = self.embedder.embed([query])[0]
        return self.index.query(vector, k)
