"""Naming an order without its number (pure): recency, items by name, colour or category, list positions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from app.order_match import parse_reference, resolve
from app.store import ItemView, OrderView


def order(oid: str, day: int, *items: tuple[str, str]) -> OrderView:
    return OrderView(id=oid, customer_id="C1", status="delivered", placed_at=datetime(2026, 3, day),
                     items=tuple(ItemView("SKU", name, 1, Decimal("1"), category, False) for name, category in items))


ORDERS = [  # newest first, as ShopStore.orders_of returns them
    order("SD-5", 14, ("Enamel Camp Mug (Cream)", "home")),
    order("SD-4", 10, ("Noise-Cancelling Headphones (Sand)", "electronics"), ("Wool Beanie (Charcoal)", "accessories")),
    order("SD-3", 8, ("Trail Runner GTX (Slate, 9)", "shoes")),
    order("SD-2", 5, ("Wireless Earbuds Pro (White)", "earbuds")),
    order("SD-1", 1, ("Noise-Cancelling Headphones (Black)", "electronics")),
]


def ids(text: str, orders=ORDERS, in_list: bool = False) -> list[str] | None:
    found = resolve(parse_reference(text, in_list=in_list), orders, 0.8)
    return None if found is None else [o.id for o in found]


@pytest.mark.parametrize(("text", "expected"), [
    ("where is my last order?", ["SD-5"]),
    ("status of my most recent purchase", ["SD-5"]),
    ("the last thing I ordered", ["SD-5"]),
    ("and my previous order", ["SD-4"]),
    ("where's my first order", ["SD-1"]),
    ("where is the order with the headphones", ["SD-4", "SD-1"]),
    ("my hedphones", ["SD-4", "SD-1"]),  # typo
    ("the black headphones", ["SD-1"]),  # a colour narrows the names that match
    ("my latest headphones order", ["SD-4"]),
    ("the oldest headphones order", ["SD-1"]),
    ("where are my shoes", ["SD-3"]),  # a category
    ("my earbuds", ["SD-2"]),
    ("the mug", ["SD-5"]),
    ("the beanie", ["SD-4"]),
])
def test_a_message_names_orders(text, expected):
    assert ids(text) == expected


@pytest.mark.parametrize("text", ["where is my order", "any update?", "it's for my son's birthday next week",
                                  "order SD-10004 ada@example.com 94110", "a cap"])
def test_no_reference_is_none(text):
    assert ids(text) is None


def test_short_words_must_match_exactly():
    assert ids("the cap") is None and ids("camp mug") == ["SD-5"]


def test_positions_count_only_in_a_list_just_shown():
    shown = ORDERS[1:4]
    assert ids("the second one", shown, in_list=True) == ["SD-3"]
    assert ids("3", shown, in_list=True) == ["SD-2"]
    assert ids("the last one", shown, in_list=True) == ["SD-2"]
    assert ids("the fifth one", shown, in_list=True) == []  # not in the list: ask again
    assert ids("the second one") is None  # no list: no position
    assert parse_reference("my last order", in_list=True).ordinal is None  # "last order" is the newest
