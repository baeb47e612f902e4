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


_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+")


def visible_text(text: str) -> str:
    """A shopper's message as the assistant reads it: control and invisible format characters removed
    (a NUL cannot be stored in PostgreSQL text; zero-width and bidi characters can hide or disguise
    words), lone surrogates (JSON lets a client send them; they cannot be encoded) replaced, and the
    ends trimmed. A message of only such characters becomes empty, and gets the empty-message reply."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    return _INVISIBLE.sub(lambda m: " " if "\u2028" in m.group() or "\u2029" in m.group() else "", text).strip()


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
