"""Which of a verified customer's orders a message means, without an order number. Pure functions.

"my last order", "the previous one", "my first order" pick by date; "the order with the headphones",
"my hedphones" (typo) pick by item names with ``intents.entities.match_items`` (fuzzy, shared with
the classifier's entities); words it leaves aside, colours and sizes in brackets ("the sand ones")
and categories ("my shoes"), narrow the choice or stand in when no name matches. "the second one"
picks from a list the shopper was just shown. Only the customer's own orders are ever compared, so
a match reveals nothing about anyone else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from app.store import OrderView
from intents.entities import match_items as match_item_names

_STOP_WORDS = """
a about again all am an and any are as at be been but by can could did do does for from get got had has have
he her hi hello hey him his how i i'm if in into is it it's its just me mine my no not now of on one ones or
our please pls plz she so some still that the their them then there these they this those to too u up us
want was we were what when where which who why will with would yet you your yours ok okay thanks thank
order orders ordered package packages parcel parcels delivery deliver delivered shipment shipping ship shipped
status track tracking item items thing things stuff bought buy purchase purchased purchases arrive arrived
arriving come came coming check see tell know update news help need show find looking look sent send placed
place last latest recent recently newest previous before earlier first oldest earliest second third other
another same new got most here week weeks day days month today yesterday ago soon already long wait waiting
where's whats what's hasn't hasnt isn't isnt didn't didnt haven't havent
"""
_SYNONYMS = {"tshirt": "tee", "shirt": "tee", "jumper": "sweater", "pullover": "sweater", "trousers": "pants",
             "cup": "mug", "headset": "headphone", "earphone": "earbud", "trainer": "runner",
             "hat": "beanie", "rucksack": "daypack", "backpack": "daypack", "coat": "parka"}
_RECENCY = (
    ("latest", re.compile(r"\b(?:last|latest|most recent|newest|recent|current)\s+(?:\w+\s+){0,2}?"
                          r"(?:order|ordered|purchase|bought|package|parcel|delivery|shipment)\b"
                          r"|\b(?:latest|newest|most recent)\b")),
    ("previous", re.compile(r"\b(?:previous|one before|order before|before that|before last|second to last)\b")),
    ("oldest", re.compile(r"\b(?:first|oldest|earliest)\s+(?:\w+\s+){0,2}?(?:order|purchase)\b")),
)
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
             "fifth": 5, "5th": 5, "last": -1}
_ORDINAL = re.compile(r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th)\s+(?:one|order)\b"
                      r"|\b(last)\s+one\b|\b(?:number|no\.?|option)\s*([1-5])\b|^\s*([1-5])\s*[.)!]?\s*$")
_NOISE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+|\b[A-Z]{1,4}-?\d{4,}\b|#\s*\d+|\d+", re.IGNORECASE)


@dataclass(frozen=True)
class OrderReference:
    """What a message says about which order it means."""

    recency: str | None = None  # latest | previous | oldest
    ordinal: int | None = None  # position in the list just shown; -1 = the last listed
    words: tuple[str, ...] = ()  # content words that may name an item
    text: str = ""  # the message without order numbers, emails and digits

    @property
    def empty(self) -> bool:
        return self.recency is None and self.ordinal is None and not self.words


def _stem(word: str) -> str:
    word = word.replace("-", "").replace("'", "")
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _SYNONYMS.get(word, word)


_STOP = frozenset(_STOP_WORDS.split()) | frozenset(_stem(w) for w in _STOP_WORDS.split())


def _words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z][a-z'-]*", text.lower())]


def parse_reference(text: str, in_list: bool = False) -> OrderReference:
    """``in_list``: the shopper was just shown a list, so "the second one" means its second entry."""
    lowered = text.lower()
    recency = next((name for name, pattern in _RECENCY if pattern.search(lowered)), None)
    ordinal = None
    if in_list:
        m = _ORDINAL.search(lowered)
        if m:
            word = m.group(1) or m.group(2)
            ordinal = _ORDINALS[word] if word else int(m.group(3) or m.group(4))
    cleaned = _NOISE.sub(" ", text)
    words = tuple(dict.fromkeys(w for w in _words(cleaned) if len(w) >= 3 and w not in _STOP))
    return OrderReference(recency, ordinal, words, cleaned)


def item_vocabulary(order: OrderView) -> set[str]:
    """The words an order's items can be called by: names, attributes in brackets, categories."""
    vocab: set[str] = set()
    for item in order.items:
        vocab.update(w for w in _words(f"{item.name} {item.category.replace('_', ' ')}") if len(w) >= 3)
    return vocab - _STOP


def _similar(word: str, vocab: set[str], min_similarity: float) -> bool:
    if word in vocab:
        return True
    if len(word) <= 4:  # short words: "cap" and "camp" are not the same thing
        return False
    return any(len(v) > 4 and SequenceMatcher(None, word, v).ratio() >= min_similarity for v in vocab)


def match_words(words: tuple[str, ...], orders: list[OrderView], min_similarity: float) -> list[OrderView]:
    """The orders whose item vocabulary matches the most of ``words`` (none match: empty list)."""
    scored = []
    for order in orders:
        vocab = item_vocabulary(order)
        scored.append((sum(_similar(w, vocab, min_similarity) for w in words), order))
    best = max((score for score, _ in scored), default=0)
    return [order for score, order in scored if score == best] if best else []


def match_orders(ref: OrderReference, orders: list[OrderView], min_similarity: float) -> list[OrderView]:
    """The orders whose items the message names, in the given order (none: empty list)."""
    names = sorted({item.name for order in orders for item in order.items})
    named = {name for name, _ in match_item_names(ref.text, names, typo_tolerance=min_similarity)}
    by_name = [order for order in orders if any(item.name in named for item in order.items)]
    if not by_name:
        return match_words(ref.words, orders, min_similarity)
    narrowed = match_words(ref.words, by_name, min_similarity)  # "the sand headphones"
    return narrowed if narrowed and len(narrowed) < len(by_name) else by_name


def resolve(ref: OrderReference, orders: list[OrderView], min_similarity: float) -> list[OrderView] | None:
    """The orders ``ref`` can mean, newest first; None when it names no order at all.

    ``orders`` is the customer's orders newest first (or the list just shown, in its order).
    """
    if ref.ordinal is not None:
        index = ref.ordinal - 1 if ref.ordinal > 0 else len(orders) + ref.ordinal
        return [orders[index]] if 0 <= index < len(orders) else []
    candidates = orders
    matched = False
    if ref.words:
        by_item = match_orders(ref, orders, min_similarity)
        if by_item:
            candidates, matched = by_item, True
    if ref.recency == "latest":
        return candidates[:1]
    if ref.recency == "previous":
        return candidates[1:2]
    if ref.recency == "oldest":
        return candidates[-1:]
    return candidates if matched else None
