"""Entities in a shopper message: order numbers, emails, zips, phones, items; and yes/no answers.

Rule-based on purpose: these values gate access to order data, so they must be exact and
explainable. Order numbers are normalised to the shop's canonical form (``SD-10492``) whatever way
the shopper typed them (``#10492``, ``order 10492``, ``order id: 10492``, ``sd10492``, ``SD 10492``,
``SD_10492``). Zips are US zips (5 digits, ZIP+4 gives the 5), UK and Canadian postcodes (upper case,
no space). Item mentions are matched fuzzily against the names of a verified order's items
(``match_items``): the shopper writes "the trail runners" or "my parka", never the catalogue name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}\d(?![\w-])")
ZIP_RE = re.compile(r"(?<![\w#-])(\d{5})(?:-\d{4})?(?![\w-])")
UK_POSTCODE_RE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b", re.IGNORECASE)
CA_POSTCODE_RE = re.compile(r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d)\b", re.IGNORECASE)

_YES_WORDS = (r"y|ya|yes+|yeah|yea|yep|yup|sure|ok(?:ay)?|please(?: do)?|go ahead|do it|confirm(?:ed)?|correct|"
              r"that'?s (?:right|correct|it)|absolutely|of course|definitely|thanks|thank you|great|perfect|"
              r"(?:please )?connect me|open (?:a|the) ticket")
_NO_WORDS = (r"n|no+|nope|nah|no thanks?(?: you)?|never ?mind|cancel that|stop|don'?t|do not|not now|"
             r"not really|no need|thanks|thank you|i'?m good|all good")
# the whole message is a yes (or a no): "yes please", "ok, go ahead!" -- not "yes, where is my order"
_YES = re.compile(rf"\s*(?:{_YES_WORDS})(?:[\s,!.]+(?:{_YES_WORDS}))*[\s!.]*", re.IGNORECASE)
_NO = re.compile(rf"\s*(?:{_NO_WORDS})(?:[\s,!.]+(?:{_NO_WORDS}))*[\s!.]*", re.IGNORECASE)
_LONE_THANKS = re.compile(r"\s*(?:thanks|thank you|great|perfect)[\s!.]*", re.IGNORECASE)


@dataclass(frozen=True)
class Entities:
    order_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


class EntityExtractor:
    """Finds entities; ``prefix`` is the shop's order-number prefix (a setting, e.g. ``SD-``)."""

    def __init__(self, prefix: str = "SD-", min_digits: int = 5, max_digits: int = 6) -> None:
        letters = re.escape(prefix.rstrip("-# "))
        digits = rf"(\d{{{min_digits},{max_digits}}})"
        self.prefix = prefix
        self._order_res = (
            re.compile(rf"(?<![A-Za-z0-9]){letters}\s*[-\u2013\u2014_.#:]?\s*{digits}(?!\d)", re.IGNORECASE),
            re.compile(rf"#\s*{digits}(?!\d)"),
            re.compile(rf"\b(?:order|ordr)s?\s*(?:number|no\.?|num|nr\.?|id|ref(?:erence)?|#)?\s*(?:is\s+)?[:#]?\s*"
                       rf"{digits}(?!\d)", re.IGNORECASE),
        )

    def extract(self, text: str) -> Entities:
        orders: list[str] = []
        spans: list[tuple[int, int]] = []
        for pattern in self._order_res:
            for m in pattern.finditer(text):
                oid = f"{self.prefix}{m.group(1)}"
                spans.append(m.span(1))
                if oid not in orders:
                    orders.append(oid)
        emails = _unique(m.group(0).lower() for m in EMAIL_RE.finditer(text))
        # a zip is a 5-digit number that is not part of an order number, an email or a phone
        email_spans = [m.span() for m in EMAIL_RE.finditer(text)]
        phone_matches = [m for m in PHONE_RE.finditer(text) if len(re.sub(r"\D", "", m.group(0))) >= 10]
        taken = spans + email_spans + [m.span() for m in phone_matches]
        zips = _unique(
            m.group(1)
            for m in ZIP_RE.finditer(text)
            if not any(a <= m.start(1) < b for a, b in taken)
        )
        zips = zips + _unique(m.group(1).upper().replace(" ", "")
                              for pattern in (UK_POSTCODE_RE, CA_POSTCODE_RE) for m in pattern.finditer(text))
        phones = _unique(re.sub(r"[^\d+]", "", m.group(0)) for m in phone_matches)
        return Entities(tuple(orders), emails, zips, phones)


# words that never name an item ("the", "pair of", "my")
_ITEM_STOPWORDS = frozenset((
    "a", "an", "the", "my", "our", "your", "his", "her", "their", "this", "that", "these", "those",
    "of", "and", "with", "for", "in", "on", "to", "pair", "pairs", "set", "x", "one", "two",
))


def _item_tokens(text: str) -> list[str]:
    return [singular(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _ITEM_STOPWORDS]


def singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def _token_similarity(a: str, b: str) -> float:
    """1.0 for the same word; short words must match exactly ("cap" is not "camp"); else difflib's ratio."""
    if a == b:
        return 1.0
    if min(len(a), len(b)) < 5:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


def match_items(text: str, item_names: Sequence[str], min_score: float = 0.6,
                typo_tolerance: float = 0.8) -> list[tuple[str, float]]:
    """Items of an order the message mentions, best first: ``[(name, score)]`` with score in (0, 1].

    Each word of an item's name is matched to its most similar word in the message (plurals folded;
    a word of 5+ letters may have a typo or two: similarity >= ``typo_tolerance``). ``coverage`` is
    the mean similarity over the name's words. The name's last word is its noun in English catalogue
    names ("Trail runner", "Insulated Parka"), and naming the noun alone is a real mention ("my
    parka"): score = (noun + coverage) / 2 when the noun matched, else coverage / 2.
    """
    words = _item_tokens(text)
    scored: list[tuple[str, float]] = []
    for name in item_names:
        tokens = _item_tokens(re.sub(r"\(.*?\)", " ", name))  # "(3 pack)" qualifies, never names
        nouns = [t for t in tokens if t.isalpha()]
        if not tokens or not words or not nouns:
            continue
        sims = {t: max(_token_similarity(t, w) for w in words) for t in tokens}
        sims = {t: (v if v >= typo_tolerance else 0.0) for t, v in sims.items()}
        coverage = sum(sims[t] for t in tokens) / len(tokens)
        noun = sims[nouns[-1]]
        score = (noun + coverage) / 2 if noun else coverage / 2
        if score >= min_score:
            scored.append((name, round(score, 4)))
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def is_affirmative(text: str) -> bool:
    """The whole message is a plain yes to a confirmation question."""
    return bool(_YES.fullmatch(text)) and not is_negative(text) and not _LONE_THANKS.fullmatch(text)


def is_negative(text: str) -> bool:
    """The whole message is a plain no (a lone "thanks" counts as neither)."""
    return bool(_NO.fullmatch(text)) and not _LONE_THANKS.fullmatch(text)


def _unique(values) -> tuple[str, ...]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return tuple(seen)
