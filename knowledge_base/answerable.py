"""Answerability: should the FAQ answer from these passages, or say it does not know?

The cosine of the question and a whole chunk cannot tell a near miss ("how do i clean a wool sweater"
against the down jacket care article) from a real question worded the shopper's way ("can i call you
through a tty relay service"). The decision reads four signals of the top ``retrieval_top_k`` hits
and one of the question (``evidence``):

- ``similarity``: the best cosine of the question and a hit;
- ``sentence``: the best cosine of the question and any one sentence of the hits (embedded with its
  article title and section): one sentence that says it is stronger evidence than a topical chunk;
- ``missing``: the IDF-weighted share of the question's content words (stopwords and question filler
  removed, stemmed like BM25) that occur nowhere in the hits (a typo of a word in them counts as found).
  A near miss usually names one rare thing the help centre never mentions (kayak, sweater, ceo); a word
  no article uses weighs the most.
- ``aligned``: the IDF-weighted mean, over the question's content words, of each word's best cosine with
  any word of the hits, both read in context by the embedding model (its last layer, word pieces
  averaged): a graded version of ``missing``. Measured with MiniLM against the down jacket care
  sentence "Wash your down jacket in a front-loading machine": in "is the rain jacket machine washable"
  "rain" reaches 0.31 at best ("down" in the same question: 0.94), although the whole question and the
  article are close; "venmo" against the payment methods list reaches 0.01, "pay" 0.71.
- ``precedent``: the best cosine of the question with a labelled answerable shopper question minus the
  best with a labelled unanswerable one (knowledge_base/precedents.py): the help centre's known gaps.

A logistic regression over them (``AnswerModel``, knowledge_base/answer_model.py: weights and threshold
in ``answer_model.json``, fitted and cross-validated by ``python -m evals.bench_retrieval --fit`` on
the labelled questions, the threshold chosen leaving one writer out) answers when its probability
reaches the threshold. Measured (leave one writer out, 9 writers, aimed at 92%): on average 92.5% of a
writer's unanswerable questions declined, 6.4% of their answerable ones wrongly declined; on 49 + 50
questions written blind afterwards 95.9% and 14.0%. Without a precedent (the
labelled questions were not labelled against these hits) the model's fallback, fitted without it, decides.
Below the cosine floor ``min_score`` (a setting) it always declines. The model is fitted on one embedder's cosines: with
another embedder (the hashing fake, or a different model without a refit), or without an embedder for
the sentence check and word vectors, the floor alone decides. The FAQ handler (app/faq.py), ``shopdesk search`` and the
benchmark all apply this rule.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge_base.answer_model import MODEL_FILE, AnswerModel
from knowledge_base.bm25 import STOPWORDS, stem
from knowledge_base.embedder import Embedder, WordEmbedder
from knowledge_base.labels import LABELS_FILE
from knowledge_base.precedents import Precedents, load_precedents

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


def content_term(word: str) -> str | None:
    """The stemmed term of a lower-case word, or None for a stopword, question filler or punctuation."""
    word = word.replace("'", "")
    if not word.isalnum() or word in STOPWORDS or word in QUESTION_FILLER:
        return None
    term = stem(word)
    return None if term in QUESTION_FILLER else term


@lru_cache(maxsize=4096)
def content_terms(text: str) -> frozenset[str]:
    """The stemmed content words of ``text`` (cached: passages repeat across questions)."""
    return frozenset(t for t in map(content_term, _WORD.findall(text.lower())) if t is not None)


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


@dataclass(frozen=True)
class _PassageVectors:
    sentences: np.ndarray  # (n sentences, dim)
    words: np.ndarray  # (n words, dim): every word of every sentence, read in its sentence


class SentenceSimilarity:
    """What the embedder says of a question against the passages' sentences: the best cosine with any one
    sentence (``best``) and how well the question's words are matched by words in them (``aligned``).

    Each sentence is embedded as "title section: sentence" (the heading says what "it" is about) once
    per passage and kept (a few hundred passages in a help centre: bounded by ``max_passages``); with an
    embedder that gives word vectors (``WordEmbedder``) the same forward pass gives its words' vectors.
    Sentences not seen before go to the embedder in one call.
    """

    def __init__(self, embedder: Embedder, max_passages: int = 4096) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self.words = isinstance(embedder, WordEmbedder)  # whether ``aligned`` can be measured
        self._vectors: dict[tuple[str, str, str], _PassageVectors] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, embedder: Embedder) -> SentenceSimilarity:
        """One per embedder in a process, so every assistant built on the shared models shares the vectors."""
        with _SHARED_LOCK:
            found = _SHARED.get(embedder)
            if found is None:
                found = _SHARED[embedder] = cls(embedder)
            return found

    def _passages(self, passages: Sequence[Passage], question: str | None) -> tuple[list[_PassageVectors],
                                                                                     np.ndarray | None]:
        """The passages' vectors (embedding those not kept yet), and ``question``'s embedding in the same
        call when one is given."""
        keys = list(dict.fromkeys((p.title, p.section, p.text) for p in passages))
        with self._lock:
            missing = [k for k in keys if k not in self._vectors]
        texts = [] if question is None else [question]
        spans = []
        for title, section, text in missing:
            head = " ".join(x for x in (title, section) if x)
            sentences = [f"{head}: {s}" if head else s for s in split_sentences(text)] or [head or text]
            spans.append((len(texts), len(texts) + len(sentences)))
            texts.extend(sentences)
        if self.words and texts:
            encoded = self.embedder.embed_words(texts)  # type: ignore[attr-defined]
            vectors = np.stack([e.vector for e in encoded]).astype(np.float32)
        else:
            encoded = []
            vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32) if texts else np.zeros((0, 0))
        with self._lock:
            if len(self._vectors) + len(missing) > self.max_passages:
                self._vectors.clear()
            for key, (start, end) in zip(missing, spans, strict=True):
                words = [e.word_vectors for e in encoded[start:end]]
                self._vectors[key] = _PassageVectors(
                    vectors[start:end], np.concatenate(words) if words else np.zeros((0, vectors.shape[1])))
            found = [self._vectors.get(k) for k in keys]
        return [v for v in found if v is not None], (vectors[0] if question is not None else None)

    def best(self, question: str, passages: Sequence[Passage], question_vector: np.ndarray | None = None) -> float:
        """``question_vector``: the question's embedding if the retriever already made it (else embedded here)."""
        kept, embedded = self._passages(passages, question if question_vector is None else None)
        query = embedded if question_vector is None else np.asarray(question_vector, dtype=np.float32)
        known = [v.sentences for v in kept if len(v.sentences)]
        if not known or query is None:
            return 0.0
        return float((np.concatenate(known) @ query).max())

    def aligned(self, question: str, passages: Sequence[Passage], vocab: Vocabulary | None) -> float:
        """The IDF-weighted mean, over the question's content words, of each word's best cosine with any
        word of the passages, read in context; a word the passages use, or a typo of one ("canda"), counts
        1 (a typo's word pieces read as something else). 0 when the question has no content words or the
        embedder gives no word vectors."""
        if not self.words or not passages:
            return 0.0
        (asked,) = self.embedder.embed_words([question])  # type: ignore[attr-defined]
        terms = [content_term(w) for w in asked.words]
        rows = [i for i, t in enumerate(terms) if t is not None]
        kept, _ = self._passages(passages, None)
        found = [v.words for v in kept if len(v.words)]
        if not rows or not found:
            return 0.0
        best = (asked.word_vectors[rows] @ np.concatenate(found).T).max(axis=1)
        literal = passage_terms(passages)  # a word the passages use (or a typo of one) is matched outright
        best = np.where([terms[i] in literal or _typo_of(terms[i], literal) for i in rows], 1.0, best)
        weight = np.array([term_weight(terms[i], vocab) for i in rows])
        return float((best * weight).sum() / weight.sum())


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
    weight = {term: term_weight(term, vocab) for term in wanted}
    return sum(weight[t] for t in missing) / sum(weight.values())


def term_weight(term: str, vocab: Vocabulary | None) -> float:
    """A stemmed term's IDF in the help centre; a term in no chunk weighs what BM25 gives such a term (the
    most). Without a vocabulary every term weighs 1."""
    if vocab is None:
        return 1.0
    return vocab.idf.get(term, math.log(1.0 + (vocab.n + 0.5) / 0.5))


def evidence(question: str, hits: Sequence[Passage], sentences: SentenceSimilarity,
             question_vector: np.ndarray | None = None, vocab: Vocabulary | None = None,
             precedents: Precedents | None = None) -> dict[str, float]:
    """The model's features (``knowledge_base.answer_model.FEATURES``) of a question and its top hits;
    without ``precedent`` when the precedents have nothing to say (none, or not about these hits)."""
    found = {"similarity": max((h.similarity for h in hits), default=0.0),
             "sentence": sentences.best(question, hits, question_vector) if hits else 0.0,
             "missing": missing_weight(question, hits, vocab),
             "aligned": sentences.aligned(question, hits, vocab)}
    precedent = precedents.score(sentences.embedder, question, question_vector, hits) if precedents else None
    return found if precedent is None else {**found, "precedent": precedent}


@dataclass(frozen=True)
class Decision:
    answerable: bool
    similarity: float  # best cosine among the hits looked at
    probability: float | None = None  # the model's; None when the floor alone decided
    features: dict[str, float] | None = None  # what the model read (``evidence``)
    reason: str = ""  # "below_floor", "model" (answered) or "unsupported" (declined), "floor" (no model applies)
    threshold: float | None = None  # the model's, when it decided

    def to_dict(self) -> dict[str, Any]:
        """For the staff panel and the reply's JSON: the verdict, the reason and what the model read."""
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {"answerable": self.answerable, "reason": self.reason, "similarity": r(self.similarity),
                "probability": r(self.probability), "threshold": r(self.threshold),
                "features": {k: r(v) for k, v in (self.features or {}).items()}}


@lru_cache(maxsize=8)
def _load_model(path: str) -> AnswerModel:
    return AnswerModel.load(Path(path))


_WARNED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class AnswerRule:
    min_score: float  # below: decline
    model: AnswerModel | None = None  # at or above the floor: answer when it does; None: the floor alone
    precedents: Precedents | None = field(default=None, compare=False)  # labelled questions it remembers

    @classmethod
    def floor(cls, min_score: float) -> AnswerRule:
        """The cosine floor alone."""
        return cls(min_score)

    @classmethod
    def from_settings(cls, settings: Any) -> AnswerRule:
        """``retrieval_min_score``, the model file ``retrieval_answer_model`` ("": the bundled one) and the
        labelled questions ``retrieval_precedents`` ("": the bundled ones, "none": none), with the staff's
        labels in the data dir (knowledge_base/labels.py)."""
        return cls(settings.retrieval_min_score, _load_model(str(settings.retrieval_answer_model or MODEL_FILE)),
                   load_precedents(settings.retrieval_precedents, str(Path(settings.data_dir) / LABELS_FILE)))

    def applies(self, sentences: SentenceSimilarity | None) -> bool:
        """Whether the model decides: it needs the sentence check on the embedder it was fitted with."""
        if self.model is None or sentences is None:
            return False
        name = str(getattr(sentences.embedder, "name", ""))
        if name == self.model.embedder and (sentences.words or "aligned" not in self.model.features):
            return True
        if (name, self.model.embedder) not in _WARNED:
            _WARNED.add((name, self.model.embedder))
            log.warning("answerability model fitted on %s, not %s (or an embedder without word vectors): the "
                        "cosine floor alone decides; refit with `python -m evals.bench_retrieval --fit`",
                        self.model.embedder, name)
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
        features = evidence(question, hits, sentences, question_vector, vocab, self.precedents)
        model = self.model.for_values(features)  # without a precedent: the model fitted without it
        probability = model.probability(features)
        ok = probability >= model.threshold
        return Decision(ok, similarity, probability, features, "model" if ok else "unsupported", model.threshold)
