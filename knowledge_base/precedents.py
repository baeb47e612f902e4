"""Precedents: labelled shopper questions the FAQ rule remembers (``knowledge_base/questions``).

Shoppers ask the help centre's gaps again and again, in new words: who founded the shop, how to wash a
wool sweater, whether the pickup counter takes returns. A question much closer to one the help centre is
known not to answer than to any it is known to answer is probably a near miss, whatever its passages'
cosines say. ``Precedents.score`` is that signal, the answerability model's ``precedent`` feature:

    best cosine with a labelled answerable question - best cosine with a labelled unanswerable one

A question is never its own precedent: a labelled question with the same text (case and spaces aside)
is left out, so the labelled questions are scored as the model was fitted (leave-one-out) and a shopper
typing one of them word for word gets the same treatment as any other wording. With no labelled
questions of either kind the score is 0 (no evidence). The questions are embedded once per embedder,
on first use (``warm``: at server start), and kept.

The bundled questions describe the bundled help centre: a shop with its own articles points the
``retrieval_precedents`` setting at its own labelled questions (same format) or turns them off ("none").
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from knowledge_base.embedder import Embedder
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.labelled import QUESTIONS_DIR, LabelledQuestion, load_questions

OFF = "none"


def _key(text: str) -> str:
    return " ".join(text.lower().split())


class Precedents:
    def __init__(self, questions: Sequence[LabelledQuestion]) -> None:
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

    def score(self, embedder: Embedder, question: str, question_vector: np.ndarray | None = None) -> float:
        """Best cosine with an answerable precedent minus best with an unanswerable one (0: no evidence)."""
        if not self.answerable.any() or self.answerable.all():
            return 0.0
        vectors = self.warm(embedder)
        if question_vector is None:
            question_vector = embedder.embed([question])[0]
        similarity = vectors @ np.asarray(question_vector, dtype=np.float32)
        other = self._keys != _key(question)
        yes, no = other & self.answerable, other & ~self.answerable
        if not yes.any() or not no.any():
            return 0.0
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
    return Precedents(load_questions(folder))
