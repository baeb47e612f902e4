"""The Chroma collection of FAQ chunks: sync by content-hash ids, and nearest-neighbour queries.

``sync`` adds chunks whose id is new and deletes ids no longer present, so re-running after an edit
touches exactly what changed; unchanged chunks are not re-embedded. Telemetry is off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.embedder import Embedder
from knowledge_base.loader import Chunk

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@dataclass(frozen=True)
class SyncStats:
    added: int
    deleted: int
    unchanged: int


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    url: str
    section: str
    text: str
    similarity: float


class ChromaIndex:
    """A persistent local collection (``path``) or a Chroma server (``host``/``port``)."""

    def __init__(self, collection: str, path: Path | None = None, host: str = "", port: int = 8000) -> None:
        if not path and not host:
            raise ValueError("ChromaIndex needs a path or a host")
        self.collection_name = collection
        self.path, self.host, self.port = path, host, port
        self._collection = None

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.host:
            return chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        assert self.path is not None
        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path), settings=settings)

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self._client().get_or_create_collection(
                self.collection_name, embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collection

    def exists(self) -> bool:
        if not self.host and not (self.path and self.path.is_dir()):
            return False
        return self.count() > 0

    def count(self) -> int:
        return int(self.collection.count())

    def ids(self) -> set[str]:
        return set(self.collection.get(include=[])["ids"])

    def sync(self, chunks: Sequence[Chunk], embedder: Embedder, batch: int = 64,
             progress: Callable[[int, int], None] | None = None) -> SyncStats:
        wanted = {c.id: c for c in chunks}
        present = self.ids()
        stale = sorted(present - wanted.keys())
        new = [c for cid, c in wanted.items() if cid not in present]
        for start in range(0, len(new), batch):
            part = new[start:start + batch]
            vectors = embedder.embed([c.embed_text for c in part])
            self.collection.upsert(
                ids=[c.id for c in part],
                embeddings=np.asarray(vectors, dtype=np.float32),
                documents=[c.text for c in part],
                metadatas=[{"doc_id": c.doc_id, "title": c.title, "url": c.url,
                            "category": c.category, "section": c.section} for c in part],
            )
            if progress:
                progress(min(start + batch, len(new)), len(new))
        if stale:
            self.collection.delete(ids=stale)
        return SyncStats(added=len(new), deleted=len(stale), unchanged=len(wanted) - len(new))

    def query(self, vector: np.ndarray, k: int) -> list[Hit]:
        res = self.collection.query(query_embeddings=np.asarray([vector], dtype=np.float32), n_results=k,
                                    include=["documents", "metadatas", "distances"])
        hits = []
        for cid, doc, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                        res["distances"][0], strict=True):
            hits.append(Hit(cid, meta["doc_id"], meta["title"], meta["url"], meta.get("section", ""),
                            doc, similarity=1.0 - float(dist)))
        return hits
