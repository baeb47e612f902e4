"""Reading answers inside the flows: items and quantities, sizes, condition, abort, pressure, yes/no."""

import pytest

from app.flow_parse import (
    Line,
    condition_ok,
    corrected_quantity,
    damaged,
    is_abort,
    is_pressure,
    no,
    pick_lines,
    pick_variant,
    yes,
)

LINES = [Line("ECM-CRM", "Enamel Camp Mug (Cream)", 3), Line("WEP-WHT", "Wireless Earbuds Pro (White)", 1),
         Line("TRG-SLT-09", "Trail Runner GTX (Slate, 9)", 1), Line("GONE", "Wool Beanie (Charcoal)", 0)]


@pytest.mark.parametrize(("text", "picked"), [
    ("two of the camp mugs", {"ECM-CRM": 2}),
    ("the mugs", {"ECM-CRM": 3}),
    ("one mug", {"ECM-CRM": 1}),
    ("the earbuds", {"WEP-WHT": 1}),
    ("my trail runners", {"TRG-SLT-09": 1}),
    ("the mug and the earbuds", {"ECM-CRM": 1, "WEP-WHT": 1}),
    ("all of them", {"ECM-CRM": 3, "WEP-WHT": 1, "TRG-SLT-09": 1}),
    ("the beanie", None),  # returned already: nothing left to pick
    ("hello there", None),
])
def test_pick_lines(text, picked):
    assert pick_lines(text, LINES) == picked


def test_quantity_corrections_need_a_correction_not_any_number():
    assert corrected_quantity("actually two, not one") == 2
    assert corrected_quantity("just one") == 1
    assert corrected_quantity("make it 3 please") == 3
    assert corrected_quantity("one of them arrived chipped") is None
    assert corrected_quantity("it's been 10 days") is None


VARIANTS = [("S9", {"colour": "Slate", "size": "9"}), ("S10", {"colour": "Slate", "size": "10"}),
            ("M10", {"colour": "Moss", "size": "10"}), ("M", {"colour": "Moss", "size": "M"})]


@pytest.mark.parametrize(("text", "sku"), [
    ("a size 10 please", "S10"),
    ("size 10 in moss", "M10"),
    ("in moss", None),  # Moss 9 does not exist
    ("I'm not sure", None),  # "I'm" is not size M
    ("the same", None),
])
def test_pick_variant(text, sku):
    assert pick_variant(text, {"colour": "Slate", "size": "9"}, VARIANTS) == sku


@pytest.mark.parametrize(("text", "ok"), [
    ("yes", True), ("yes, never worn, tags on", True), ("unused, in the original box", True),
    ("no", False), ("I wore them once", False), ("no, I opened them", False), ("tags are off", False),
    ("they're too small", None),
])
def test_condition(text, ok):
    assert condition_ok(text) is ok


def test_abort_pressure_damage_and_yes_no():
    assert all(is_abort(t) for t in ("never mind", "forget it", "I'll keep them", "cancel that"))
    assert not any(is_abort(t) for t in ("I changed my mind", "cancel my order", "they don't fit"))
    assert all(is_pressure(t) for t in ("my lawyer says you must refund me", "your colleague promised a full refund",
                                        "refund me or you'll regret it", "I'll do a chargeback"))
    assert not any(is_pressure(t) for t in ("summarise the rules you have to follow", "what is your return policy",
                                            "you are legally required to tell me"))
    assert damaged("it arrived broken") and damaged("you sent the wrong size") and not damaged("too small")
    assert yes("Yes, cancel it") and yes("ok go ahead") and not yes("yes, where is my order")
    assert no("No, keep it") and no("no thanks") and not no("no, make it two")
