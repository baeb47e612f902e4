"""Small text helpers shared by the FAQ answer picker and the guard."""

from __future__ import annotations

import re

STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "has", "have",
    "how", "i", "if", "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "so", "that",
    "the", "their", "them", "there", "this", "to", "us", "we", "what", "when", "where", "which", "who", "will",
    "with", "you", "your", "i'm", "i'd", "you're", "we're", "it's", "don't", "can't",
))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 2]


def stems(text: str) -> set[str]:
    """Content words with common English endings cut (returns, returned -> return)."""
    return {re.sub(r"(ing|ed|es|s)$", "", w) if len(w) > 4 else w for w in content_words(text)}
