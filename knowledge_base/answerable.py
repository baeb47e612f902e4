"""Answerability: should the FAQ answer from these passages, or say it does not know?

The cosine of the question and a whole chunk cannot tell a near miss ("how do i clean a wool sweater"
against the down jacket care article) from a real question worded the shopper's way ("can i call you
through a tty relay service"), so where that cosine is ambiguous the rule asks for more evidence:

- the best cosine among the top hits >= ``accept_score``: answer;
- below ``min_score``: decline;
- in between, answer when either
  - lexical: at least ``min_coverage`` of the question's content words (stopwords and question filler
    removed, stemmed with the BM25 tokenizer's ``stem``) occur in the top passages (title, section,
    text). A near miss usually names the one thing the help centre never mentions (sweater, kayak, ceo);
  - or one sentence: some single sentence of the top passages (embedded with its article title and
    section) has cosine >= ``min_sentence_score`` to the question. This catches paraphrases the words
    miss ("how long do i have to send back headphones" vs "Electronics, including earbuds, can be
    returned within 15 days"): one sentence that says it is stronger evidence than a topical chunk.

Otherwise decline. With ``accept_score <= min_score`` the band is empty: the plain cosine floor. The
thresholds are settings (app/config.py), chosen with evals/bench_retrieval.py on the labelled
questions; the FAQ handler (app/faq.py), ``shopdesk search`` and the benchmark all apply this rule.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from knowledge_base.bm25 import STOPWORDS, stem
from knowledge_base.embedder import Embedder

# words that make a sentence a question or a request but name no topic, on top of the BM25 stopwords,
# and texting shorthand for stopwords (checked before and after stemming: "whats" -> "what")
QUESTION_FILLER = frozenset((
    "what", "how", "get", "got", "any", "anything", "need", "want", "should", "really", "also", "some",
    "something", "thing", "way", "much", "many", "one", "u", "ur", "pls", "plz",
))
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class Passage(Protocol):
    """What the rule reads of a hit (``knowledge_base.index.Hit`` has these)."""

    title: str
    section: str
    text: str
    similarity: float


@lru_cache(maxsize=4096)
def content_terms(text: str) -> frozenset[str]:
    """The stemmed content words of ``text`` (cached: passages repeat across questions)."""
    out = set()
    for word in _WORD.findall(text.lower()):
        word = word.replace("'", "")
        if word in STOPWORDS or word in QUESTION_FILLER:
            continue
        term = stem(word)
        if term not in QUESTION_FILLER:
            out.add(term)
    return frozenset(out)


def coverage(question: str, passages: Sequence[Passage]) -> float:
    """Share of the question's content words found in any of the passages (0 for a question of none)."""
    wanted = content_terms(question)
    if not wanted:
        return 0.0
    found: set[str] = set()
    for p in passages:
        found |= content_terms(p.title) | content_terms(p.section) | content_terms(p.text)
    return len(wanted & found) / len(wanted)


def split_sentences(text: str) -> list[str]:
    """A passage's sentences (list items count as sentences), as app/faq.py's answer picker splits them."""
    flat = re.sub(r"\s+", " ", re.sub(r"^[-*]\s+", "", text, flags=re.MULTILINE)).strip()
    return [s for s in re.split(r"(?<=[.!?])\s+", flat) if s]


class SentenceSimilarity:
    """The best cosine between a question and any one sentence of the passages.

    Each sentence is embedded as "title section: sentence" (the heading says what "it" is about) once
    per passage and kept (a few hundred passages in a help centre: bounded by ``max_passages``). The
    question and a passage's sentences not seen before go to the embedder in one call.
    """

    def __init__(self, embedder: Embedder, max_passages: int = 4096) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self._vectors: dict[tuple[str, str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, embedder: Embedder) -> SentenceSimilarity:
        """One per embedder in a process, so every assistant built on the shared models shares the vectors."""
        with _SHARED_LOCK:
            found = _SHARED.get(embedder)
            if found is None:
                found = _SHARED[embedder] = cls(embedder)
            return found

    def best(self, question: str, passages: Sequence[Passage], question_vector: np.ndarray | None = None) -> float:
        """``question_vector``: the question's embedding if the retriever already made it (else embedded here)."""
        keys = list(dict.fromkeys((p.title, p.section, p.text) for p in passages))
        with self._lock:
            missing = [k for k in keys if k not in self._vectors]
        texts = [] if question_vector is not None else [question]
        spans = []
        for title, section, text in missing:
            head = " ".join(x for x in (title, section) if x)
            sentences = [f"{head}: {s}" if head else s for s in split_sentences(text)] or [head or text]
            spans.append((len(texts), len(texts) + len(sentences)))
            texts.extend(sentences)
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), np.float32)
        query = vectors[0] if question_vector is None else np.asarray(question_vector, dtype=np.float32)
        with self._lock:
            if len(self._vectors) + len(missing) > self.max_passages:
                self._vectors.clear()
            for key, (start, end) in zip(missing, spans, strict=True):
                self._vectors[key] = vectors[start:end]
            found = [self._vectors.get(k) for k in keys]
        known = [v for v in found if v is not None and len(v)]
        if not known:
            return 0.0
        return float((np.concatenate(known) @ query).max())


def query_vector(retriever: Any, query: str) -> np.ndarray | None:
    """The retriever's vector of a query it just searched, if it keeps them (dense and hybrid do)."""
    lookup = getattr(retriever, "query_vector", None)
    return lookup(query) if lookup is not None else None


_SHARED: weakref.WeakKeyDictionary[Embedder, SentenceSimilarity] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Decision:
    answerable: bool
    similarity: float  # best cosine among the hits looked at
    coverage: float | None  # share of content words in the passages; None when the cosine alone decided
    sentence: float | None  # best one-sentence cosine; None when not needed (or no embedder)
    reason: str  # "similar" (>= accept_score), "covered", "sentence", "unsupported" (band), "below_floor"


@dataclass(frozen=True)
class AnswerRule:
    min_score: float  # below: decline
    accept_score: float  # at or above: answer; <= min_score makes the rule the plain floor
    min_coverage: float  # in between: the share of content words the top passages must contain ...
    min_sentence_score: float = 2.0  # ... or the cosine one of their sentences must reach (> 1: never)

    @classmethod
    def floor(cls, min_score: float) -> AnswerRule:
        """The cosine floor alone (no band)."""
        return cls(min_score, min_score, 0.0)

    @classmethod
    def from_settings(cls, settings: Any) -> AnswerRule:
        return cls(settings.retrieval_min_score, settings.retrieval_accept_score,
                   settings.retrieval_min_coverage, settings.retrieval_min_sentence_score)

    def decide(self, question: str, hits: Sequence[Passage], sentences: SentenceSimilarity | None = None,
               question_vector: np.ndarray | None = None) -> Decision:
        """``hits``: the passages the FAQ would answer from (its top ``retrieval_top_k``), best first.
        Without ``sentences`` (no embedder, e.g. BM25 only) the band has the lexical check alone;
        ``question_vector``, the retriever's embedding of the question, saves embedding it again."""
        similarity = max((h.similarity for h in hits), default=0.0)
        if similarity < self.min_score or not hits:
            return Decision(False, similarity, None, None, "below_floor")
        if similarity >= self.accept_score:
            return Decision(True, similarity, None, None, "similar")
        share = coverage(question, hits)
        if share >= self.min_coverage:
            return Decision(True, similarity, share, None, "covered")
        if sentences is None or self.min_sentence_score > 1.0:
            return Decision(False, similarity, share, None, "unsupported")
        best = sentences.best(question, hits, question_vector)
        ok = best >= self.min_sentence_score
        return Decision(ok, similarity, share, best, "sentence" if ok else "unsupported")
