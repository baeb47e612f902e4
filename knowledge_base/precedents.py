"""Precedents: labelled shopper questions the FAQ rule remembers (``knowledge_base/questions``).

Shoppers ask the help centre's gaps again and again, in new words: who founded the shop, how to wash a
wool sweater, whether the pickup counter takes returns. A question much closer to one the help centre is
known not to answer than to any it is known to answer is probably a near miss, whatever its passages'
cosines say. ``Precedents.score`` is that signal, the answerability model's ``precedent`` feature:

    best cosine with a labelled answerable question - best cosine with a labelled unanswerable one

A question is never its own precedent: a labelled question with the same words (case, spaces and
punctuation aside) is left out, so the labelled questions are scored as the model was fitted
(leave-one-out) and a shopper typing one of them word for word gets the same treatment as any other
wording. With no labelled questions of either kind there is no score (None: no evidence, and the
answerability model's fallback, fitted without this feature, decides). The questions are embedded once
per embedder, on first use (``warm``: at server start), and kept.

Labels go stale when the help centre changes: "do you offer gift wrapping" is a known gap until a shop
writes about gift wrapping. So the bundled precedents know the sections they were labelled against
(article id and heading, of the repo's articles, versioned with the questions): when any of a
question's hits is from a section they do not know (a new article or a new section, an imported FAQ
pair), there is no score and the passages alone decide (the answerability model's fallback,
knowledge_base/answer_model.py). An edited section keeps its article and heading, so changing "30 days"
to "14 days" keeps the precedents (a new topic written into an old section does not silence them: the
one case this misses). A shop with its own articles points the ``retrieval_precedents`` setting at its
own labelled questions (same format; taken as written for the articles indexed now) or turns them off
("none").

Support agents add to them (knowledge_base/labels.py): each label is read at the next question (``refresh``:
one ``stat`` of the labels file when nothing was added), embedded once, and, unlike a bundled question,
counts for its own words: a shopper typing the labelled question gets the agent's verdict. A later label
of the same words overrides earlier ones and a bundled question's.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from knowledge_base.embedder import Embedder
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.labelled import QUESTIONS_DIR, LabelledQuestion, load_questions
from knowledge_base.labels import LabelStore
from knowledge_base.loader import DOCS_DIR, load_chunks

OFF = "none"


def same_words(text: str) -> str:
    """What makes two questions the same words: case, spaces and punctuation aside."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class Precedents:
    """``known_sections``: the (article id, section heading) pairs the questions were labelled against
    (None: whatever is indexed). ``store``: staff labels (knowledge_base/labels.py), read as they come."""

    def __init__(self, questions: Sequence[LabelledQuestion],
                 known_sections: frozenset[tuple[str, str]] | None = None, store: LabelStore | None = None) -> None:
        self.known_sections = known_sections
        self.store = store
        self._bundled = (list(questions), known_sections)
        self._reset()
        self._vectors: weakref.WeakKeyDictionary[Embedder, np.ndarray] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _reset(self) -> None:
        questions, self.known_sections = self._bundled
        self.texts = [q.text for q in questions]
        self.answerable = np.array([q.answerable for q in questions], dtype=bool)
        self._keys = np.array([same_words(t) for t in self.texts], dtype=object)
        self._staff = np.zeros(len(self.texts), dtype=bool)  # a staff label counts even for its own words
        self._active = np.ones(len(self.texts), dtype=bool)  # False: overridden by a later label
        self._offset = 0  # bytes of the store read

    def __len__(self) -> int:
        return int(self._active.sum())

    def warm(self, embedder: Embedder) -> np.ndarray:
        """The questions' vectors on ``embedder``, the staff labels added so far included (embedded on the
        first call, then kept)."""
        self.refresh()
        return self._embedded(embedder)

    def _embedded(self, embedder: Embedder) -> np.ndarray:
        with self._lock:
            found = self._vectors.get(embedder)
            if found is None:
                found = _embed(embedder, self.texts)
                self._vectors[embedder] = found
            return found

    def refresh(self) -> int:
        """Take in the staff labels added since the last look (one ``stat`` when there are none); returns how
        many. A later label of the same words overrides earlier ones and a bundled question's."""
        if self.store is None or self.store.size() == self._offset:
            return 0
        with self._lock:
            if self.store.size() < self._offset:  # the file was replaced: read it again from the start
                self._reset()
                self._vectors.clear()
            labels, self._offset = self.store.read_from(self._offset)
            if not labels:
                return 0
            texts = [x.text for x in labels]
            keys = [same_words(t) for t in texts]
            self._active &= ~np.isin(self._keys, keys)
            latest = [k not in keys[i + 1:] for i, k in enumerate(keys)]
            self.texts += texts
            self.answerable = np.concatenate([self.answerable, [x.answerable for x in labels]]).astype(bool)
            self._keys = np.concatenate([self._keys, np.array(keys, dtype=object)])
            self._staff = np.concatenate([self._staff, np.ones(len(labels), dtype=bool)])
            self._active = np.concatenate([self._active, np.array(latest, dtype=bool)])
            if self.known_sections is not None:
                self.known_sections = self.known_sections | {s for x in labels for s in x.sections}
            for embedder, vectors in list(self._vectors.items()):
                if len(vectors) + len(texts) == len(self.texts):
                    self._vectors[embedder] = np.concatenate([vectors, _embed(embedder, texts)])
                else:  # replaced above: embedded again on its next use
                    del self._vectors[embedder]
            return len(labels)

    def score(self, embedder: Embedder, question: str, question_vector: np.ndarray | None = None,
              hits: Sequence[object] = ()) -> float | None:
        """Best cosine with an answerable precedent minus best with an unanswerable one; None (no evidence)
        without precedents of both kinds, or when a hit is from a section they were not labelled against."""
        self.refresh()
        with self._lock:
            answerable, keys, staff, active = self.answerable, self._keys, self._staff, self._active
            known = self.known_sections
        if not (active & answerable).any() or not (active & ~answerable).any():
            return None
        if known is not None and any(
                (getattr(h, "doc_id", None), getattr(h, "section", None)) not in known for h in hits):
            return None
        vectors = self._embedded(embedder)  # refreshed above: the labels file is looked at once a question
        n = min(len(vectors), len(answerable))  # a label added meanwhile counts from the next question
        vectors, answerable, keys, staff, active = vectors[:n], answerable[:n], keys[:n], staff[:n], active[:n]
        if question_vector is None:
            question_vector = embedder.embed([question])[0]
        similarity = vectors @ np.asarray(question_vector, dtype=np.float32)
        counted = active & ((keys != same_words(question)) | staff)
        found = margins(similarity, answerable, counted)
        return None if np.isnan(found) else float(found)


def margins(similarity: np.ndarray, answerable: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """The precedent score of each row of ``similarity`` (questions by labelled questions; one question: a
    vector): the best cosine with a ``counted`` answerable labelled question minus the best with a counted
    unanswerable one; NaN where either kind has none counted."""
    yes = np.where(counted & answerable, similarity, -np.inf).max(axis=-1)
    no = np.where(counted & ~answerable, similarity, -np.inf).max(axis=-1)
    return np.where(np.isfinite(yes) & np.isfinite(no), yes - no, np.nan)


def _embed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(embedder.embed(list(texts)), dtype=np.float32).reshape(len(texts), -1)


@lru_cache(maxsize=8)
def load_precedents(setting: str = "", labels: str = "") -> Precedents | None:
    """The ``retrieval_precedents`` setting: "" the bundled labelled questions, "none" none, else a folder of
    ``*.yaml`` labelled questions (knowledge_base/labelled.py's format); ``labels``: the staff labels file
    (knowledge_base/labels.py; "" none). One instance per setting in a process, so every assistant shares
    the vectors."""
    if setting.strip().lower() == OFF:
        return None
    folder = Path(setting) if setting else QUESTIONS_DIR
    if not folder.is_dir():
        raise KnowledgeBaseError(f"retrieval_precedents: {folder} is not a folder of labelled questions "
                                 f"(*.yaml); use \"\" for the bundled ones or \"{OFF}\" for none")
    known = frozenset((c.doc_id, c.section) for c in load_chunks(DOCS_DIR)) if not setting else None
    return Precedents(load_questions(folder), known, LabelStore(Path(labels)) if labels else None)
