"""The one helper that masks personal data for logs, stored turns, the staff panel and reports."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}(\d{2})(?![\w-])")
_CARD = re.compile(r"\b(?:\d[ -]?){12,15}(\d{4})\b")


def mask(text: str) -> str:
    """``ada.park@example.com`` -> ``a***@example.com``; phones and card numbers keep 2/4 digits."""
    text = _CARD.sub(lambda m: "****" + m.group(1), text)
    text = _EMAIL.sub(lambda m: m.group(1) + "***" + m.group(2), text)
    return _PHONE.sub(lambda m: "***" + m.group(1), text)
