"""FAQ answers from the knowledge base: retrieve, apply the relevance floor, answer from passages.

The floor compares each hit's cosine similarity to the question (``retrieval_min_score``): the hybrid
retriever ranks by fused rank, and every hit carries its cosine. When no hit among the top
``retrieval_top_k`` reaches the floor, the assistant says it does not know and offers a human instead
of guessing; evals/bench_retrieval.py measures that trade-off on labelled questions.

When the index cannot be searched (missing, empty, damaged, its server down), the FAQ says so and
offers a person (``faq_unavailable``); nothing else of the assistant depends on the index.
"""

from __future__ import annotations

import logging
import re

from app.schema import Facts, Passage
from app.text import stems
from knowledge_base.errors import IndexUnavailableError
from knowledge_base.retriever import Retriever

ROUTE = "faq"
log = logging.getLogger(__name__)


def best_sentences(text: str, query: str = "", limit: int = 3, max_chars: int = 500) -> str:
    """The passage's own sentences that best match the query, in passage order (the template answer).

    Extractive on purpose: it states only what the passage says. Without a query, the first sentences.
    """
    flat = re.sub(r"\s+", " ", re.sub(r"^[-*]\s+", "", text, flags=re.MULTILINE)).strip()
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", flat) if x]
    wanted = stems(query)
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(wanted & stems(sentences[i])), i))
    chosen: list[int] = []
    total = 0
    for i in ranked:
        if len(chosen) == limit or (chosen and total + len(sentences[i]) > max_chars):
            break
        chosen.append(i)
        total += len(sentences[i])
    return " ".join(sentences[i] for i in sorted(chosen))


class FaqHandler:
    def __init__(self, retriever: Retriever, top_k: int, min_score: float) -> None:
        self.retriever = retriever
        self.top_k = top_k
        self.min_score = min_score

    def handle(self, text: str) -> Facts:
        try:
            hits = self.retriever.search(text, self.top_k)
        except IndexUnavailableError as exc:
            log.error("FAQ not searchable: %s", exc)
            return Facts(kind="faq_unavailable", route=ROUTE, handoff=True, choices=("Talk to a person",),
                         use_model=False)
        passages = tuple(Passage(h.doc_id, h.title, h.url, h.section, h.text, round(h.similarity, 4)) for h in hits)
        relevant = tuple(p for p, h in zip(passages, hits, strict=True) if h.similarity >= self.min_score)
        if not relevant:
            return Facts(kind="faq_unknown", route=ROUTE, passages=passages, handoff=True,
                         choices=("Talk to a person",), use_model=False)
        best = relevant[0]
        answer = best_sentences(best.text, f"{text} {best.section}")
        return Facts(kind="faq_answer", route=ROUTE, passages=relevant[:2],
                     data={"answer": answer, "title": best.title})
