"""FAQ answers from the knowledge base: retrieve, decide whether it is answerable, answer from passages.

The decision (``AnswerRule``, knowledge_base/answerable.py) reads the top ``retrieval_top_k`` hits: below
the cosine floor ``retrieval_min_score`` it declines; above it a logistic regression over the best
cosine, the best one-sentence cosine and the IDF-weighted share of the question's words missing from the
hits decides (knowledge_base/answer_model.json, fitted by ``python -m evals.bench_retrieval --fit``).
When it declines, the assistant says it does not know and offers a human instead of guessing (when the
passages were relevant but the model found no answer in them, it names the closest article, unquoted);
evals/bench_retrieval.py measures that trade-off on labelled questions, in and out of sample.

When the index cannot be searched (missing, empty, damaged, its server down), the FAQ says so and
offers a person (``faq_unavailable``); nothing else of the assistant depends on the index.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from app.config import Settings
from app.pii import mask
from app.schema import Facts, Passage
from app.text import stems
from knowledge_base.answerable import AnswerRule, SentenceSimilarity, query_vector, vocabulary
from knowledge_base.embedder import Embedder
from knowledge_base.errors import IndexUnavailableError, KnowledgeBaseError
from knowledge_base.labels import FaqLabel, LabelStore
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class FaqHandler:
    """Without ``rule``: the cosine floor ``min_score`` alone. The app builds it with ``from_settings``."""

    def __init__(self, retriever: Retriever, top_k: int, min_score: float, rule: AnswerRule | None = None,
                 sentences: SentenceSimilarity | None = None) -> None:
        self.retriever = retriever
        self.top_k = top_k
        self.rule = rule or AnswerRule.floor(min_score)
        self.min_score = self.rule.min_score
        self.sentences = sentences

    @classmethod
    def from_settings(cls, retriever: Retriever, settings: Settings, embedder: Embedder | None = None,
                      ) -> FaqHandler:
        rule = AnswerRule.from_settings(settings)
        return cls(retriever, settings.retrieval_top_k, rule.min_score, rule,
                   SentenceSimilarity.shared(embedder) if embedder is not None else None)

    def warm_up(self) -> None:
        """Load what a first question would: the retriever's models, and the rule's labelled questions."""
        self.retriever.search("shipping", 1)
        if self.rule.precedents is not None and self.sentences is not None and self.rule.applies(self.sentences):
            self.rule.precedents.warm(self.sentences.embedder)

    @property
    def label_store(self) -> LabelStore | None:
        """Where staff labels are kept; None when the labelled questions are turned off."""
        return self.rule.precedents.store if self.rule.precedents is not None else None

    def label(self, question: str, answerable: bool, at: str = "") -> tuple[FaqLabel, dict[str, Any]]:
        """A support agent's verdict on ``question``: kept (emails, phones and addresses masked, as the staff
        panel shows them) with the sections of the passages it is judged against (knowledge_base/labels.py),
        then the decision the FAQ makes now (``Decision.to_dict``)."""
        store = self.label_store
        if store is None:
            raise KnowledgeBaseError("labels are kept with the labelled questions, and they are turned off "
                                     "(SHOPDESK_RETRIEVAL_PRECEDENTS=none)")
        hits = self.retriever.search(question, self.top_k)
        sections = tuple(dict.fromkeys((h.doc_id, h.section) for h in hits))
        label = FaqLabel(mask(question).strip(), answerable, sections, at)
        store.add(label)
        now = self.rule.decide(question, hits[:self.top_k], self.sentences, query_vector(self.retriever, question),
                               vocabulary(self.retriever))
        return label, now.to_dict()

    def handle(self, text: str) -> Facts:
        try:
            hits = self.retriever.search(text, self.top_k)
            vocab = vocabulary(self.retriever)  # the searched chunks' term statistics (cached with them)
        except IndexUnavailableError as exc:
            log.error("FAQ not searchable: %s", exc)
            return Facts(kind="faq_unavailable", route=ROUTE, handoff=True, choices=("Talk to a person",),
                         use_model=False)
        passages = tuple(Passage(h.doc_id, h.title, h.url, h.section, h.text, round(h.similarity, 4)) for h in hits)
        decision = self.rule.decide(text, hits[:self.top_k], self.sentences, query_vector(self.retriever, text),
                                    vocab)
        relevant = tuple(p for p, h in zip(passages, hits, strict=True) if h.similarity >= self.min_score)
        if not decision.answerable or not relevant:
            features = decision.features or {}
            log.info("FAQ declined (%s): best cosine %.3f, %s, probability %s", decision.reason, decision.similarity,
                     ", ".join(f"{k} {_fmt(v)}" for k, v in features.items() if k != "similarity") or "no model",
                     _fmt(decision.probability))
            # relevant passages the model found no answer in: the closest article is named, not quoted, so
            # a shopper whose answer is there after all finds it and nothing is asserted (below the floor:
            # nothing is close enough to name)
            closest = relevant[0] if decision.reason == "unsupported" and relevant else None
            return Facts(kind="faq_unknown", route=ROUTE, passages=passages, handoff=True,
                         data={"closest": {"title": closest.title, "url": closest.url}} if closest else {},
                         choices=("Talk to a person",), use_model=False, answerability=decision.to_dict())
        best = relevant[0]
        answer = best_sentences(best.text, f"{text} {best.section}")
        return Facts(kind="faq_answer", route=ROUTE, passages=relevant[:2],
                     data={"answer": answer, "title": best.title}, answerability=decision.to_dict())
