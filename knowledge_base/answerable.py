"""Answerability: should the FAQ answer from these passages, or say it does not know?

The cosine of the question and a whole chunk cannot tell a near miss ("how do i clean a wool sweater"
against the down jacket care article) from a real question worded the shopper's way ("can i call you
through a tty relay service"). The decision reads three signals of the top ``retrieval_top_k`` hits
(``evidence``):

- ``similarity``: the best cosine of the question and a hit;
- ``sentence``: the best cosine of the question and any one sentence of the hits (embedded with its
  article title and section): one sentence that says it is stronger evidence than a topical chunk;
- ``missing``: the IDF-weighted share of the question's content words (stopwords and question filler
  removed, stemmed like BM25) that occur nowhere in the hits (a typo of a word in them counts as found).
  A near miss usually names one rare thing the help centre never mentions (kayak, sweater, ceo); a word
  no article uses weighs the most.

A logistic regression over them (``AnswerModel``, knowledge_base/answer_model.py: weights and threshold
in ``answer_model.json``, fitted and cross-validated by ``python -m evals.bench_retrieval --fit`` on
the labelled questions) answers when its probability reaches the threshold. Measured (5-fold
cross-validation, bundled threshold): 82% of unanswerable questions declined, 11% of answerable ones
wrongly declined; declining 90% costs about 20% (see app/config.py, retrieval_min_score). Below the cosine floor
``min_score`` (a setting) it always declines. The model is fitted on one embedder's cosines: with
another embedder (the hashing fake, or a different model without a refit), or without an embedder for
the sentence check, the floor alone decides. The FAQ handler (app/faq.py), ``shopdesk search`` and the
benchmark all apply this rule.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge_base.answer_model import MODEL_FILE, AnswerModel
from knowledge_base.bm25 import STOPWORDS, stem
from knowledge_base.embedder import Embedder

# words that make a sentence a question or a request but name no topic, on top of the BM25 stopwords,
# and texting shorthand for stopwords (checked before and after stemming: "whats" -> "what")
QUESTION_FILLER = frozenset((
    "what", "how", "get", "got", "any", "anything", "need", "want", "should", "really", "also", "some",
    "something", "thing", "way", "much", "many", "one", "u", "ur", "pls", "plz", "guys",
    # negated auxiliaries typed without the apostrophe ("dont"): "don't" loses it before this check too
    "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "hasnt", "havent", "hadnt", "wont", "cant",
    "couldnt", "shouldnt", "wouldnt", "theres", "thats",
))
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
log = logging.getLogger(__name__)


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


def passage_terms(passages: Sequence[Passage]) -> set[str]:
    """The stemmed content words of the passages' titles, sections and texts together."""
    found: set[str] = set()
    for p in passages:
        found |= content_terms(p.title) | content_terms(p.section) | content_terms(p.text)
    return found


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


class Vocabulary(Protocol):
    """The help centre's term statistics (``knowledge_base.bm25.BM25`` has these): idf per stemmed term."""

    idf: Mapping[str, float]
    n: int


def vocabulary(retriever: Any) -> Vocabulary | None:
    """The term statistics of the chunks the retriever searches, if it has them (all three retrievers do)."""
    lookup = getattr(retriever, "vocabulary", None)
    return lookup() if lookup is not None else None


def _one_slip(term: str) -> set[str]:
    """``term`` with one letter dropped or two neighbours swapped (a typo's distance, both ways)."""
    dropped = {term[:i] + term[i + 1:] for i in range(len(term))}
    return dropped | {term[:i] + term[i + 1] + term[i] + term[i + 2:] for i in range(len(term) - 1)}


def _typo_of(term: str, found: set[str]) -> bool:
    """A missing word of 5+ letters one slip away from a passage word ("canda", "recieve") is that word."""
    if len(term) < 5:
        return False
    slips = _one_slip(term)
    return any(f in slips or (len(f) >= 5 and term in _one_slip(f)) for f in found if abs(len(f) - len(term)) <= 1)


def missing_weight(question: str, passages: Sequence[Passage], vocab: Vocabulary | None) -> float:
    """IDF-weighted share of the question's content words that occur in none of the passages (1 for a
    question of none); a typo of a passage word counts as found. A word the help centre never uses weighs
    what BM25 gives a term in no chunk, the most; without a vocabulary every word weighs the same."""
    wanted = content_terms(question)
    if not wanted:
        return 1.0
    found = passage_terms(passages)
    missing = {t for t in wanted - found if not _typo_of(t, found)}
    if vocab is None:
        return len(missing) / len(wanted)
    unseen = math.log(1.0 + (vocab.n + 0.5) / 0.5)
    weight = {term: vocab.idf.get(term, unseen) for term in wanted}
    return sum(weight[t] for t in missing) / sum(weight.values())


def evidence(question: str, hits: Sequence[Passage], sentences: SentenceSimilarity,
             question_vector: np.ndarray | None = None, vocab: Vocabulary | None = None) -> dict[str, float]:
    """The model's features (``knowledge_base.answer_model.FEATURES``) of a question and its top hits."""
    return {"similarity": max((h.similarity for h in hits), default=0.0),
            "sentence": sentences.best(question, hits, question_vector) if hits else 0.0,
            "missing": missing_weight(question, hits, vocab)}


@dataclass(frozen=True)
class Decision:
    answerable: bool
    similarity: float  # best cosine among the hits looked at
    probability: float | None = None  # the model's; None when the floor alone decided
    features: dict[str, float] | None = None  # what the model read (``evidence``)
    reason: str = ""  # "below_floor", "model" (answered) or "unsupported" (declined), "floor" (no model applies)


@lru_cache(maxsize=8)
def _load_model(path: str) -> AnswerModel:
    return AnswerModel.load(Path(path))


_WARNED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class AnswerRule:
    min_score: float  # below: decline
    model: AnswerModel | None = None  # at or above the floor: answer when it does; None: the floor alone

    @classmethod
    def floor(cls, min_score: float) -> AnswerRule:
        """The cosine floor alone."""
        return cls(min_score)

    @classmethod
    def from_settings(cls, settings: Any) -> AnswerRule:
        """``retrieval_min_score`` and the model file ``retrieval_answer_model`` ("": the bundled one)."""
        return cls(settings.retrieval_min_score, _load_model(str(settings.retrieval_answer_model or MODEL_FILE)))

    def applies(self, sentences: SentenceSimilarity | None) -> bool:
        """Whether the model decides: it needs the sentence check on the embedder it was fitted with."""
        if self.model is None or sentences is None:
            return False
        name = str(getattr(sentences.embedder, "name", ""))
        if name == self.model.embedder:
            return True
        if (name, self.model.embedder) not in _WARNED:
            _WARNED.add((name, self.model.embedder))
            log.warning("answerability model fitted on %s, not %s: the cosine floor alone decides; refit with "
                        "`python -m evals.bench_retrieval --fit`", self.model.embedder, name)
        return False

    def decide(self, question: str, hits: Sequence[Passage], sentences: SentenceSimilarity | None = None,
               question_vector: np.ndarray | None = None, vocab: Vocabulary | None = None) -> Decision:
        """``hits``: the passages the FAQ would answer from (its top ``retrieval_top_k``), best first;
        ``question_vector``, the retriever's embedding of the question, saves embedding it again;
        ``vocab``: the term statistics of the searched chunks (``vocabulary(retriever)``)."""
        similarity = max((h.similarity for h in hits), default=0.0)
        if similarity < self.min_score or not hits:
            return Decision(False, similarity, reason="below_floor")
        if not self.applies(sentences):
            return Decision(True, similarity, reason="floor")
        features = evidence(question, hits, sentences, question_vector, vocab)
        probability = self.model.probability(features)
        ok = probability >= self.model.threshold
        return Decision(ok, similarity, probability, features, "model" if ok else "unsupported")
