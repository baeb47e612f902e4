"""The one helper that masks personal data for logs, stored turns, the staff panel and reports.

What it masks, and what it keeps so staff can still follow a conversation:

- emails: ``ada.park@example.com`` -> ``a***@example.com`` (first letter and domain)
- payment cards (13-19 digits, spaced or dashed) -> ``****4242``; IBANs -> ``GB** ****``; a CVV/CVC
  named as such -> ``CVV ***``
- phone numbers (8+ digits with separators, optional +) -> ``***00`` (last two digits)
- street addresses (``742 Evergreen Terrace, Apt 5``, ``Hauptstraße 5``, ``12 rue de Rivoli``, ``PO Box
  123``, and a following ``, City, ST 94110``) -> ``[address]``

It errs towards masking: a quantity followed by "Street" may be masked too. Order numbers (``SD-10492``),
SKUs and tracking numbers with letters stay readable.
"""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
# not an ISO date (2026-03-01); at most 15 digits (E.164), so a 22-digit tracking number stays readable
_PHONE = re.compile(r"(?<![\w-])(?!\d{4}-\d{2}-\d{2}(?!\d))\+?\d[\d ().-]{7,}(\d{2})(?![\w-])")
_PHONE_MAX_DIGITS = 15
_CARD = re.compile(r"\b(?:\d[ -]?){9,15}(\d{4})\b")
_IBAN = re.compile(r"\b([A-Z]{2})\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CVV = re.compile(r"\b(cvv2?|cvc2?|csc|security code)(\W{0,3})\d{3,4}\b", re.IGNORECASE)

# street types that are never ordinary words, in any case; the ambiguous ones ("way", "drive",
# "place", ...) count only capitalised ("Milky Way"), as an address is usually written
_STREET_ANY_CASE = r"(?i:street|st\.|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|lane|ln\.?|parkway|pkwy\.?|" \
                   r"highway|hwy\.?|terrace|ter\.|crescent|cres\.)"
_STREET_CAPITALISED = r"(?:St|Way|Drive|Dr\.?|Place|Pl\.?|Court|Ct\.?|Square|Sq\.?|Circle|Cir\.?|Close|" \
                      r"Trail|Alley|Mews)(?=\s*(?:[,.;:!?)]|$|\n))"  # and where an address ends: not "2 Court shoes"
# words that do not occur in a street's name but do between a number and "road" in a sentence
_NOT_A_NAME = r"(?i:the|a|an|of|on|in|to|by|at|for|and|or|down|up|my|your|our|from|with|is|are|was|x|items?)\b"
_UNIT = r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|floor|fl|flat)\.?\s*#?\s*[\w-]{1,6}|,?\s*#\s*[\w-]{1,6})?"
_CITY_ZIP = r"(?:,\s*[A-Za-z][A-Za-z .'-]{1,30}(?:,\s*[A-Za-z]{2})?\s+\d{5}(?:-\d{4})?)?"
_STREET = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]?(?:-\d{1,4})?\s+"  # house number: 742, 221B, 12-14
    rf"(?:(?!{_NOT_A_NAME})[A-Za-z0-9][\w'.-]*\s+){{0,4}}?"  # the street's name: up to four words (Old Mill, 5th)
    rf"(?:{_STREET_ANY_CASE}|{_STREET_CAPITALISED})(?![\w])"
    + _UNIT + _CITY_ZIP)
_STREET_NAME_FIRST = re.compile(  # German and Dutch style: Hauptstraße 5, Keizersgracht 12
    r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|allee|platz|gracht|laan)\s+\d{1,4}[a-z]?\b"
    + _UNIT + r"(?:,\s*\d{4,5}\s+[A-ZÄÖÜ][\wäöüß-]+)?")
_STREET_WORD_FIRST = re.compile(  # 12 rue de Rivoli, 5 via Roma, 10 calle Mayor
    r"(?<![\w-])\d{1,5}[a-z]?,?\s+(?i:rue|avenue|boulevard|via|viale|calle|avenida|rua|chemin)\s+"
    r"(?:[\w'.-]+\s?){1,4}")
_PO_BOX = re.compile(r"\b(?i:p\.?\s?o\.?\s*box)\s+\d{1,6}\b")


def mask(text: str) -> str:
    """``ada.park@example.com`` -> ``a***@example.com``; cards keep 4 digits, phones 2; addresses go."""
    text = _CARD.sub(lambda m: "****" + m.group(1), text)
    text = _IBAN.sub(lambda m: m.group(1) + "** ****", text)
    text = _CVV.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = _EMAIL.sub(lambda m: m.group(1) + "***" + m.group(2), text)
    for pattern in (_STREET, _STREET_NAME_FIRST, _STREET_WORD_FIRST, _PO_BOX):
        text = pattern.sub("[address]", text)
    return _PHONE.sub(_phone, text)


def _phone(m: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in m.group(0))
    return m.group(0) if digits > _PHONE_MAX_DIGITS else "***" + m.group(1)


def mask_all(value: Any) -> Any:
    """``mask`` applied to every string inside dicts, lists and tuples (a stored Reply, a report record)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_all(v) for v in value]
    return value
