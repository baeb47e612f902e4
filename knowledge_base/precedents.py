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
from knowledge_base.loader import DOCS_DIR, load_chunks

OFF = "none"


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class Precedents:
    """``known_sections``: the (article id, section heading) pairs the questions were labelled against
    (None: whatever is indexed)."""

    def __init__(self, questions: Sequence[LabelledQuestion],
                 known_sections: frozenset[tuple[str, str]] | None = None) -> None:
        self.known_sections = known_sections
        self.texts = [q.text for q in questions]
        self.answerable = np.array([q.answerable for q in questions], dtype=bool)
        self._keys = np.array([_key(t) for t in self.texts], dtype=object)
        self._vectors: weakref.WeakKeyDictionary[Embedder, np.ndarray] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.texts)

    def warm(self, embedder: Embedder) -> np.ndarray:
        """The questions' vectors on ``embedder`` (embedded on the first call, then kept)."""
        with self._lock:
            found = self._vectors.get(embedder)
            if found is None:
                found = np.asarray(embedder.embed(self.texts), dtype=np.float32).reshape(len(self.texts), -1)
                self._vectors[embedder] = found
            return found

    def score(self, embedder: Embedder, question: str, question_vector: np.ndarray | None = None,
              hits: Sequence[object] = ()) -> float | None:
        """Best cosine with an answerable precedent minus best with an unanswerable one; None (no evidence)
        without precedents of both kinds, or when a hit is from a section they were not labelled against."""
        if not self.answerable.any() or self.answerable.all():
            return None
        if self.known_sections is not None and any(
                (getattr(h, "doc_id", None), getattr(h, "section", None)) not in self.known_sections for h in hits):
            return None
        vectors = self.warm(embedder)
        if question_vector is None:
            question_vector = embedder.embed([question])[0]
        similarity = vectors @ np.asarray(question_vector, dtype=np.float32)
        other = self._keys != _key(question)
        yes, no = other & self.answerable, other & ~self.answerable
        if not yes.any() or not no.any():
            return None
        return float(similarity[yes].max() - similarity[no].max())


@lru_cache(maxsize=8)
def load_precedents(setting: str = "") -> Precedents | None:
    """The ``retrieval_precedents`` setting: "" the bundled labelled questions, "none" none, else a folder of
    ``*.yaml`` labelled questions (knowledge_base/labelled.py's format). One instance per setting in a
    process, so every assistant shares the vectors."""
    if setting.strip().lower() == OFF:
        return None
    folder = Path(setting) if setting else QUESTIONS_DIR
    if not folder.is_dir():
        raise KnowledgeBaseError(f"retrieval_precedents: {folder} is not a folder of labelled questions "
                                 f"(*.yaml); use \"\" for the bundled ones or \"{OFF}\" for none")
    known = frozenset((c.doc_id, c.section) for c in load_chunks(DOCS_DIR)) if not setting else None
    return Precedents(load_questions(folder), known)
