"""Reading a shopper's answers inside the return, exchange and cancellation flows.

Rule-based on purpose, like ``intents.entities``: these answers decide what is written to the shop's
database, so they must be exact and explainable. Each function answers one question about one
message and returns None when the message does not answer it (the flow then asks again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from intents.entities import is_affirmative, is_negative, match_items, singular

NUMBER_WORDS = {"one": 1, "a": 1, "an": 1, "single": 1, "two": 2, "both": 2, "pair": 2, "three": 3, "four": 4,
                "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_ALL = re.compile(r"\b(?:all(?: of (?:them|it))?|everything|every(?:thing| item)|the (?:whole|entire) order|both)\b",
                  re.IGNORECASE)
_ABORT = re.compile(
    r"^\W*(?:never ?mind|forget (?:it|about it|that)|stop|abort|cancel (?:that|this|it)|scratch that|don'?t bother|"
    r"leave it|no,? (?:never ?mind|forget it|stop)|i(?:'ve| have)? changed my mind,? (?:i'?ll|i will) keep (?:it|them)|"
    r"i(?:'?ll| will) keep (?:it|them)(?: after all)?|i don'?t want to (?:return|exchange|cancel) (?:it|them|anything)"
    r"(?: any ?more)?|not any ?more)\W*$", re.IGNORECASE)
_PRESSURE = re.compile(
    r"\b(?:lawyer|attorney|legal (?:action|rights|team|advice)|legally (?:binding|entitled|obliged)|sue|suing|"
    r"lawsuit|small claims|take you to court|chargeback|consumer (?:protection|rights)|"
    r"(?:colleague|agent|manager|supervisor|someone|rep(?:resentative)?|your staff|they|support) (?:already )?"
    r"(?:said|told|promised|approved|agreed|authori[sz]ed)|"
    r"promised (?:me )?(?:a )?(?:full )?refund|you owe me|entitled to (?:a )?(?:full )?refund|"
    r"you (?:must|have to|are (?:legally )?(?:obliged|required) to) (?:refund|accept|take|give|pay|reimburse)|"
    r"(?:make|give me) an exception|binding (?:offer|agreement|promise)|"
    r"or (?:else|you'?ll regret|i'?ll (?:sue|report|dispute|post|leave)))\b", re.IGNORECASE)
_DAMAGED = re.compile(r"\b(?:damaged|defective|broken|broke|faulty|ripped|torn|cracked|stopped working|doesn'?t work|"
                      r"not working|arrived (?:damaged|broken)|wrong (?:item|size sent|colou?r sent|product|one)|"
                      r"not what i ordered|sent (?:me )?the wrong)\b", re.IGNORECASE)
_GOOD_CONDITION = re.compile(
    r"\b(?:unused|unworn|never (?:been )?(?:used|worn|opened)|brand new|like new|tags (?:still )?(?:on|attached)|"
    r"(?:still )?(?:sealed|unopened)|in (?:the )?original (?:packaging|box))\b", re.IGNORECASE)
_BAD_CONDITION = re.compile(
    r"\b(?:worn (?:them|it|once|twice|outside)|i wore|used (?:them|it|once|twice)|"
    r"(?:have |'ve )?(?:opened|washed|worn)|tags? (?:are |is )?(?:off|removed|cut)|"
    r"(?:removed|cut off|took off) the tags?|no (?:box|packaging|tags?)|"
    r"threw (?:away|out) the box|without (?:the )?(?:box|tags?|packaging))\b", re.IGNORECASE)
_NOT = re.compile(r"\b(?:not|never|n't|haven'?t|didn'?t)\b", re.IGNORECASE)
_OTHER_ORDER = re.compile(r"\b(?:(?:the )?other (?:one|order)|different order|wrong order|another order)\b",
                          re.IGNORECASE)
_QUANTITY = re.compile(r"\b(\d{1,2}|" + "|".join(w for w in NUMBER_WORDS if len(w) > 2) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """An order line the shopper can return: ``available`` = ordered minus already returned."""

    sku: str
    name: str
    available: int


def is_abort(text: str) -> bool:
    """The shopper wants to stop the flow ("never mind", "forget it", "I'll keep them")."""
    return bool(_ABORT.match(text.strip()))


def is_pressure(text: str) -> bool:
    """Legal threats, claimed promises, demands for exceptions: the policy answer and a human offer."""
    return bool(_PRESSURE.search(text))


def wants_other_order(text: str) -> bool:
    return bool(_OTHER_ORDER.search(text))


def damaged(text: str) -> bool:
    """The reason is damage, a defect or a wrong item (R-DAMAGED-WRONG: condition rules waived)."""
    return bool(_DAMAGED.search(text))


def condition_ok(text: str) -> bool | None:
    """Unused, tags on, original packaging? True / False / None (not an answer)."""
    if _BAD_CONDITION.search(text) and not _GOOD_CONDITION.search(text):
        return False
    if _GOOD_CONDITION.search(text):
        return not (_NOT.search(text) and not re.search(r"never (?:been )?(?:used|worn|opened)", text, re.I))
    if is_affirmative(text):
        return True
    if is_negative(text):
        return False
    return None


_NOT_THAT = re.compile(r"\b(?:not|instead of)\s+(?:\d{1,2}|" + "|".join(w for w in NUMBER_WORDS if len(w) > 2)
                       + r")\b", re.IGNORECASE)


def quantity(text: str) -> int | None:
    """The one quantity a message states ("two", "2", "two, not one"); None when none or several."""
    text = _NOT_THAT.sub(" ", text)
    found = {int(m) if m.isdigit() else NUMBER_WORDS[m.lower()] for m in _QUANTITY.findall(text)}
    return found.pop() if len(found) == 1 else None


_QTY_WORDS = r"(?:\d{1,2}|" + "|".join(w for w in NUMBER_WORDS if len(w) > 2) + r")"
_QTY_ONLY = re.compile(r"^\W*(?:(?:actually|sorry|oops|oh|no|make (?:it|that)|only|just)[\s,]+)*" + _QTY_WORDS
                       + r"(?:\s+(?:of (?:them|those)|please|instead|pieces?|items?))*\W*$", re.IGNORECASE)


def corrected_quantity(text: str) -> int | None:
    """A quantity correction: "two, not one", "actually 3", "just one" -- not "one is broken"."""
    if _NOT_THAT.search(text) or _QTY_ONLY.match(text):
        return quantity(text)
    return None


def pick_lines(text: str, lines: Sequence[Line], min_score: float = 0.6) -> dict[str, int] | None:
    """Which lines (sku -> quantity) a message picks; None when it names none.

    "all of them", "both", "everything": every returnable line in full. Item names are matched
    fuzzily (``match_items``); a single named item takes the one quantity the message states
    ("two of the mugs"), else all of it when only one is left or 1 otherwise.
    """
    open_lines = [line for line in lines if line.available > 0]
    if not open_lines:
        return None
    named = [name for name, _ in match_items(text, [line.name for line in open_lines], min_score)]
    by_word = {line.sku for line in _by_distinct_word(text, open_lines)}
    chosen = [line for line in open_lines if line.name in named or line.sku in by_word]
    if not chosen and _ALL.search(text):
        return {line.sku: line.available for line in open_lines}
    if not chosen:
        return None
    if len(chosen) == 1:
        line = chosen[0]
        qty = quantity(re.sub(re.escape(line.name), " ", text, flags=re.IGNORECASE))
        if _ALL.search(text) or (qty is None and (line.available == 1 or _plural_named(text, line.name))):
            return {line.sku: line.available}
        return {line.sku: min(qty or 1, line.available)}
    return {line.sku: (line.available if _ALL.search(text) else 1) for line in chosen}


def _by_distinct_word(text: str, lines: Sequence[Line]) -> list[Line]:
    """Lines named by a word of their name that no other line has ("the earbuds" for "Wireless Earbuds Pro")."""
    said = {singular(w) for w in re.findall(r"[a-z]+", text.lower())}
    words = {line.sku: {singular(w) for w in re.findall(r"[a-z]+", re.sub(r"\(.*?\)", " ", line.name.lower()))
                        if len(w) > 3} for line in lines}
    chosen = []
    for line in lines:
        others = set().union(*(w for sku, w in words.items() if sku != line.sku))
        if words[line.sku] & said - others:
            chosen.append(line)
    return chosen


def _plural_named(text: str, name: str) -> bool:
    """ "the mugs" names every mug of the line; "the mug" one of them."""
    nouns = [w for w in re.findall(r"[a-z]+", re.sub(r"\(.*?\)", " ", name.lower())) if len(w) > 2]
    return bool(nouns) and bool(re.search(rf"\b{re.escape(nouns[-1])}(?:s|es)\b", text.lower()))


def pick_variant(text: str, current: dict[str, str], variants: Sequence[tuple[str, dict[str, str]]]) -> str | None:
    """The variant (sku) the shopper asks for: the current attributes with the ones the message names.

    ``variants`` are (sku, attributes) of the same product. "a size 10", "in moss", "the 10 in moss"
    -> the variant whose attributes equal the current ones overridden by every value named. None when
    the message names no attribute value of this product, or the combination does not exist.
    """
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9.']+", text)}
    wanted = dict(current)
    named = False
    for key in {k for _, attrs in variants for k in attrs}:
        values = {attrs[key] for _, attrs in variants if key in attrs}
        hits = [v for v in values if v.lower() in words and v != current.get(key)]
        if len(hits) == 1:
            wanted[key] = hits[0]
            named = True
    if not named:
        return None
    for sku, attrs in variants:
        if attrs == wanted:
            return sku
    return None


_YES_ACTION = re.compile(
    r"\s*(?:yes|yeah|yep|yup|sure|ok(?:ay)?|please|go ahead)[\s,!.]*(?:please[\s,]*)?"
    r"(?:(?:cancel|return|exchange|create|do|set up) (?:it|them|that|the order|this)|start (?:a|the) return|"
    r"set it up|go ahead|do it)?(?:[\s,]*please)?[\s!.]*", re.IGNORECASE)
_NO_ACTION = re.compile(r"\s*(?:no|nope|nah|not now)[\s,!.]*(?:thanks?(?: you)?|keep (?:it|them|the order)|"
                        r"don'?t|leave it|i'?ll keep (?:it|them))?[\s!.]*", re.IGNORECASE)


def yes(text: str) -> bool:
    """A yes to the summary or offer just shown ("yes", "yes, cancel it", "ok go ahead")."""
    return is_affirmative(text) or bool(_YES_ACTION.fullmatch(text))


def no(text: str) -> bool:
    """A no to the summary or offer just shown ("no", "no, keep it", "no thanks")."""
    return is_negative(text) or bool(_NO_ACTION.fullmatch(text))
