"""Batch search: JSONL questions in, JSONL ranked articles out (``shopdesk search``).

Each input line is an object with a ``text`` string (other keys are passed through). Each output
line is that object plus ``results``: the best distinct articles, each ``{doc_id, title, url,
section, score, similarity}`` (``score`` is the retriever's ranking score, ``similarity`` the cosine
the rule compares), and ``answerable``: whether the FAQ would answer rather than decline.
The CLI reads the input (``app.jsonl``) and checks every line before any search runs, so bad
input produces no partial output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from knowledge_base.answerable import AnswerRule, SentenceSimilarity, query_vector, vocabulary
from knowledge_base.index import Hit
from knowledge_base.retriever import Retriever


def doc_results(hits: Sequence[Hit], k: int) -> list[dict[str, Any]]:
    """The first hit of each article, in rank order, at most ``k``."""
    out: dict[str, dict[str, Any]] = {}
    for h in hits:
        if h.doc_id not in out:
            out[h.doc_id] = {"doc_id": h.doc_id, "title": h.title, "url": h.url, "section": h.section,
                             "score": round(h.score, 6), "similarity": round(h.similarity, 4)}
    return list(out.values())[:k]


def search_records(records: Sequence[dict[str, Any]], retriever: Retriever, k: int, min_score: float,
                   top_k: int, batch: int = 32, progress: Callable[[int], None] | None = None,
                   rule: AnswerRule | None = None,
                   sentences: SentenceSimilarity | None = None) -> Iterator[dict[str, Any]]:
    """Search ``batch`` questions at a time (one embedding call, one index round trip per batch).

    ``answerable`` applies the FAQ's decision (``rule`` with ``sentences``, as app/faq.py does) to the
    first ``top_k`` chunks; without ``rule``, the cosine floor ``min_score`` alone.
    """
    rule = rule or AnswerRule.floor(min_score)
    vocab = vocabulary(retriever)
    depth = max(k * 3, top_k)  # chunks of one article cluster: ask for more to fill k distinct articles
    for start in range(0, len(records), batch):
        part = records[start:start + batch]
        for record, hits in zip(part, retriever.search_batch([r["text"] for r in part], depth), strict=True):
            text = record["text"]
            answerable = rule.decide(text, hits[:top_k], sentences, query_vector(retriever, text), vocab).answerable
            yield {**record, "answerable": answerable, "results": doc_results(hits, k)}
        if progress:
            progress(len(part))
