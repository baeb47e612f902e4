"""The Chroma collection of FAQ chunks: sync by content-hash ids, and nearest-neighbour queries.

``sync`` adds chunks whose id is new and deletes ids no longer present, so re-running after an edit
touches exactly what changed; unchanged chunks are not re-embedded. Telemetry is off.

``snapshot`` reads every stored chunk (text, metadata, vector) once and caches it: BM25 is built from
it, so lexical and dense retrieval always search the same chunks, local or on a Chroma server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.embedder import Embedder
from knowledge_base.errors import IndexUnavailableError
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
    similarity: float  # cosine similarity of query and chunk (the relevance floor compares this)
    score: float = 0.0  # the ranking score of the retriever that returned it (cosine, BM25 or fused)
    lexical: float = 0.0  # BM25 score (0 when the chunk shares no term with the query)


@dataclass(frozen=True)
class Snapshot:
    """Every chunk stored in the collection, with its unit vector (row i of ``vectors``)."""

    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    row: dict[str, int]  # chunk id -> row

    def hit(self, i: int, similarity: float, score: float = 0.0, lexical: float = 0.0) -> Hit:
        c = self.chunks[i]
        return Hit(c.id, c.doc_id, c.title, c.url, c.section, c.text, similarity, score, lexical)


class ChromaIndex:
    """A persistent local collection (``path``) or a Chroma server (``host``/``port``)."""

    def __init__(self, collection: str, path: Path | None = None, host: str = "", port: int = 8000) -> None:
        if not path and not host:
            raise ValueError("ChromaIndex needs a path or a host")
        self.collection_name = collection
        self.path, self.host, self.port = path, host, port
        self._collection = None
        self._snapshot: Snapshot | None = None

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

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.host else str(self.path)

    @contextmanager
    def _failing_as_unavailable(self, doing: str) -> Iterator[None]:
        """Any failure of Chroma itself becomes ``IndexUnavailableError``, with how to rebuild.

        Broad on purpose: a damaged local index or an unreachable server surfaces as many types
        (chromadb.errors.*, sqlite3 errors, AttributeError from the Rust bindings, httpx errors); the
        caller needs one answer to all of them, "the index can't be used right now".
        """
        try:
            yield
        except IndexUnavailableError:
            raise
        except Exception as exc:
            self._collection, self._snapshot = None, None  # reopen next time: it may have been repaired
            fix = "check that the Chroma server is running" if self.host else \
                f"rebuild it with `shopdesk index` (delete {self.path} first if it is damaged)"
            raise IndexUnavailableError(f"the FAQ index {self.collection_name} at {self.where} cannot be "
                                        f"{doing} ({type(exc).__name__}: {str(exc)[:200]}); {fix}") from exc

    def _empty(self) -> IndexUnavailableError:
        return IndexUnavailableError(f"the FAQ index {self.collection_name} at {self.where} is empty; build it "
                                     "with `shopdesk index`")

    def exists(self) -> bool:
        if not self.host and not (self.path and self.path.is_dir()):
            return False
        return self.count() > 0

    def count(self) -> int:
        with self._failing_as_unavailable("read"):
            return int(self.collection.count())

    def ids(self) -> set[str]:
        with self._failing_as_unavailable("read"):
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
        if new or stale:
            self._snapshot = None
        return SyncStats(added=len(new), deleted=len(stale), unchanged=len(wanted) - len(new))

    def query(self, vector: np.ndarray, k: int) -> list[Hit]:
        return self.query_batch(np.asarray([vector]), k)[0]

    def query_batch(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Nearest chunks for each query vector, in one round trip (one call to a Chroma server)."""
        if len(vectors) == 0:
            return []
        with self._failing_as_unavailable("searched"):
            res = self.collection.query(query_embeddings=np.asarray(vectors, dtype=np.float32), n_results=k,
                                        include=["documents", "metadatas", "distances"])
        if k > 0 and not any(res["ids"]):  # only an empty collection has no nearest chunk at all
            raise self._empty()
        out = []
        for ids, docs, metas, dists in zip(res["ids"], res["documents"], res["metadatas"], res["distances"],
                                           strict=True):
            hits = []
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True):
                similarity = 1.0 - float(dist)
                hits.append(Hit(cid, meta["doc_id"], meta["title"], meta["url"], meta.get("section", ""),
                                doc, similarity, score=similarity))
            out.append(hits)
        return out

    def nearest_ids(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """(chunk id, cosine similarity) of the nearest chunks per query vector, without their text."""
        if len(vectors) == 0:
            return []
        with self._failing_as_unavailable("searched"):
            res = self.collection.query(query_embeddings=np.asarray(vectors, dtype=np.float32), n_results=k,
                                        include=["distances"])
        if k > 0 and not any(res["ids"]):
            raise self._empty()
        return [[(cid, 1.0 - float(d)) for cid, d in zip(ids, dists, strict=True)]
                for ids, dists in zip(res["ids"], res["distances"], strict=True)]

    def snapshot(self, refresh: bool = False) -> Snapshot:
        """All stored chunks and vectors, read once and cached until ``sync`` changes the collection.

        Another process may sync the same collection; callers that see an id the snapshot lacks pass
        ``refresh=True``.
        """
        if self._snapshot is None or refresh:
            with self._failing_as_unavailable("read"):
                res = self.collection.get(include=["documents", "metadatas", "embeddings"])
            if not res["ids"]:
                raise self._empty()
            order = sorted(range(len(res["ids"])), key=lambda i: res["ids"][i])  # stable across reads
            chunks = tuple(
                Chunk(res["ids"][i], m["doc_id"], m["title"], m["url"], m.get("category", ""), m.get("section", ""),
                      res["documents"][i])
                for i, m in ((i, res["metadatas"][i]) for i in order))
            vectors = np.asarray(res["embeddings"], dtype=np.float32).reshape(len(order), -1)[order] if order \
                else np.zeros((0, 0), dtype=np.float32)
            self._snapshot = Snapshot(chunks, vectors, {c.id: i for i, c in enumerate(chunks)})
        return self._snapshot
