"""Okapi BM25 over a small corpus, in memory: the lexical half of hybrid retrieval.

Dense embeddings miss exact terms a shopper types (``amex``, ``po box``, ``tty``, ``in_transit``);
BM25 catches them. The corpus is a few hundred heading chunks, so a dict of postings is all it needs:
building takes milliseconds and a query touches only the postings of its own terms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

# function words that carry no topic; small on purpose ("not", "no", "before" can matter)
STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does", "doing",
    "for", "from", "had", "has", "have", "how", "i", "i'm", "if", "in", "into", "is", "it", "its", "just", "me",
    "my", "of", "on", "or", "our", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "those", "to", "too", "us", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will",
    "with", "would", "you", "your", "yours", "im", "ive", "id", "hi", "hello", "please", "thanks", "thank",
))


def stem(word: str) -> str:
    """A light suffix stripper (shipping, shipped, ships -> ship; charges, charged -> charg).

    Deliberately crude: it only has to map a shopper's word and the article's word to the same key.
    """
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: len(word) - len(suffix)] + keep
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "sz":
        word = word[:-1]  # shipp -> ship, stopp -> stop
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # charge -> charg, like charged -> charg
    return word


def tokenize(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())
    return [stem(w.replace("'", "")) for w in words if w not in STOPWORDS]


class BM25:
    """Okapi BM25 (Robertson/Sparck Jones idf with the +1 that keeps it positive)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        tokens = [tokenize(d) for d in documents]
        self.n = len(tokens)
        self.lengths = [len(t) for t in tokens]
        self.avg_length = (sum(self.lengths) / self.n) if self.n else 0.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, toks in enumerate(tokens):
            for term, tf in Counter(toks).items():
                self.postings.setdefault(term, []).append((i, tf))
        self.idf = {t: math.log(1.0 + (self.n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def scores(self, query: str) -> dict[int, float]:
        """Score of every document that shares a term with the query (the others score 0)."""
        out: dict[int, float] = {}
        for term in set(tokenize(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, tf in self.postings[term]:
                norm = tf + self.k1 * (1.0 - self.b + self.b * self.lengths[i] / self.avg_length)
                out[i] = out.get(i, 0.0) + idf * tf * (self.k1 + 1.0) / norm
        return out

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (document index, score) pairs, best first; ties keep corpus order."""
        ranked = sorted(self.scores(query).items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]
