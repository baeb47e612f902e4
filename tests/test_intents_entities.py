"""Entities beyond the basics (tests/test_entities.py): order-number variants, postcodes, phones, items."""

import pytest

from intents.entities import EntityExtractor, match_items

X = EntityExtractor("SD-")
ITEMS = ["Trail runner", "Insulated Parka", "Camp mug", "Travel mug", "Merino socks (3 pack)", "Headlamp 300"]


@pytest.mark.parametrize("text", [
    "#10492", "order 10492", "sd10492", "SD-10492", "SD–10492 (typed with an en dash)", "SD_10492", "sd.10492",
    "SD#10492", "#SD-10492", "SD - 10492", "order id 10492", "order ref: 10492", "Order Nr. 10492",
    "my order is 10492", "ordr 10492 hasnt come", "where's my ORDER #10492??", "email ada@example.com order 10492",
])
def test_order_number_variants(text):
    assert X.extract(text).order_ids == ("SD-10492",)


def test_several_order_numbers_keep_their_order_and_are_not_repeated():
    assert X.extract("SD-10492 and sd10493, also #10492").order_ids == ("SD-10492", "SD-10493")


@pytest.mark.parametrize("text", ["I paid 89 dollars", "SD-1234", "order 1234567", "call me at 10am",
                                  "the 2 person tent", "size 10.5"])
def test_no_false_order_numbers(text):
    assert X.extract(text).order_ids == ()


@pytest.mark.parametrize(("text", "zips"), [
    ("zip 94110", ("94110",)),
    ("zip is 94110-1234", ("94110",)),
    ("postcode SW1A 1AA", ("SW1A1AA",)),
    ("my postcode is m1 1ae", ("M11AE",)),
    ("postal code K1A 0B1 in Ottawa", ("K1A0B1",)),
    ("toronto m5v3l9", ("M5V3L9",)),
])
def test_postcodes_and_zips(text, zips):
    assert X.extract(text).zips == zips


@pytest.mark.parametrize(("text", "phone"), [
    ("call +1 415 555 0100", "+14155550100"),
    ("my number is (415) 555-0100", "4155550100"),
    ("415.555.0100", "4155550100"),
    ("ring me on 07700 900123", "07700900123"),
    ("+44 7700 900123 after 5pm", "+447700900123"),
])
def test_phone_formats(text, phone):
    assert X.extract(text).phones == (phone,)


def test_phone_digits_are_not_zips_or_orders():
    e = X.extract("call me on 415 555 0100 about order SD-10492")
    assert e.phones == ("4155550100",) and e.zips == () and e.order_ids == ("SD-10492",)


@pytest.mark.parametrize(("text", "best"), [
    ("the trail runners are too small", "Trail runner"),
    ("my parka is torn", "Insulated Parka"),
    ("trial runer sole came off", "Trail runner"),  # typos in both words
    ("the camp mug arrived chipped", "Camp mug"),
    ("RETURN THE SOCKS", "Merino socks (3 pack)"),
    ("headlamp flickers", "Headlamp 300"),
])
def test_item_mentions_match_the_orders_items(text, best):
    matches = match_items(text, ITEMS)
    assert matches and matches[0][0] == best
    assert all(0 < score <= 1 for _, score in matches)


def test_full_name_beats_the_bare_noun():
    matches = dict(match_items("the camp mug", ITEMS))
    assert matches["Camp mug"] == 1.0 and matches["Travel mug"] < matches["Camp mug"]
    assert dict(match_items("the mug", ITEMS)).keys() == {"Camp mug", "Travel mug"}  # ambiguous: both


@pytest.mark.parametrize("text", ["the jacket is too big", "cap", "my camp stove", "where is my order", ""])
def test_no_item_matched(text):
    assert match_items(text, ITEMS) == []


def test_two_items_in_one_message_and_no_items_to_match():
    assert {n for n, _ in match_items("return the socks and the parka", ITEMS)} == {
        "Insulated Parka", "Merino socks (3 pack)"}
    assert match_items("my parka", []) == []
