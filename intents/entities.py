"""Entities in a shopper message: order numbers, emails, zips, phones; and yes/no answers.

Rule-based on purpose: these values gate access to order data, so they must be exact and
explainable. Order numbers are normalised to the shop's canonical form (``SD-10492``) whatever way
the shopper typed them (``#10492``, ``order 10492``, ``sd10492``, ``SD 10492``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}\d(?![\w-])")
ZIP_RE = re.compile(r"(?<![\w#-])(\d{5})(?:-\d{4})?(?![\w-])")
UK_POSTCODE_RE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b", re.IGNORECASE)

_YES_WORDS = (r"y|ya|yes+|yeah|yea|yep|yup|sure|ok(?:ay)?|please(?: do)?|go ahead|do it|confirm(?:ed)?|correct|"
              r"that'?s (?:right|correct|it)|absolutely|of course|definitely|thanks|thank you|great|perfect")
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
            re.compile(rf"(?<![A-Za-z0-9]){letters}\s*[-#:]?\s*{digits}(?!\d)", re.IGNORECASE),
            re.compile(rf"#\s*{digits}(?!\d)"),
            re.compile(rf"\border\s*(?:number|no\.?|num|nr|#)?\s*[:#]?\s*{digits}(?!\d)", re.IGNORECASE),
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
        zips = zips + _unique(m.group(1).upper().replace(" ", "") for m in UK_POSTCODE_RE.finditer(text))
        phones = _unique(re.sub(r"[^\d+]", "", m.group(0)) for m in phone_matches)
        return Entities(tuple(orders), emails, zips, phones)


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
