"""The load test's shop and shoppers (`shopdesk loadtest`, issue 10).

Every session is its own customer with a delivered order to return (so no two sessions' returns can
collide) and an order on its way to ask about. They are loaded as fixtures (``app.fixtures``), dated
from now, with order numbers from a block no other run and no demo shop uses (``SD-800000`` up,
above whatever such orders the database already has), so a run can target a database that holds a
shop and earlier runs.

Each session follows a plan of segments (small talk, order status with verification, FAQ, a return
to its confirmation, a human handoff), mixed differently per session and filled to the requested
number of turns; ``return_reply`` is the shopper's side of the return flow, answering whatever the
assistant asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db import Order
from app.fixtures import load_fixtures

ORDER_BLOCK_START = 800_000  # load-test order numbers: SD-800000 and up (the demo shop's are SD-10001..)
ORDER_NUMBER_MAX = 999_999  # order numbers have 5 or 6 digits
# (sku, name, how the shopper names it, category, price): returnable for 30 days, no hygiene question
ITEMS = (("ECM-CRM", "Enamel Camp Mug (Cream)", "camp mug", "home", 18.00),
         ("BNE-CHR", "Wool Beanie (Charcoal)", "wool beanie", "accessories", 28.00),
         ("DPK-FOR", "Daypack 24L (Forest)", "daypack", "bags", 89.00))

GREETINGS = ("hi", "hello there", "good morning")
THANKS = ("thanks!", "thank you, that helps")
FAQ_QUESTIONS = ("How long does standard shipping take?", "What is your return policy?",
                 "Which payment methods do you accept?", "Can I change my shipping address?",
                 "Do you ship to Canada?")
REASONS = ("I changed my mind", "It doesn't fit")
HANDOFF_ASK = "I want to talk to a human"

# nominal turns per segment; "return" is one more for a session that double-clicks its "yes"
SEGMENT_TURNS = {"greet": 1, "thanks": 1, "faq": 1, "track": 1, "status": 2, "return": 4, "handoff": 2}
# what else a session talks about, in order, by session number modulo 4 (the return goes second)
_MIXES = (("greet", "status", "faq", "thanks", "handoff"),
          ("status", "faq", "greet", "handoff", "thanks"),
          ("faq", "greet", "status", "thanks", "handoff"),
          ("handoff", "faq", "greet", "status", "thanks"))
_FILLER = ("faq", "track", "thanks")


@dataclass(frozen=True)
class Shopper:
    index: int
    customer_id: str
    email: str
    return_order: str  # delivered 5 days ago: one returnable item
    item_sku: str
    item_name: str
    item_words: str
    status_order: str  # in transit


def first_free_number(engine: Engine, prefix: str) -> int:
    """The first order number of the block above every load-test order already in the database."""
    pattern = re.compile(rf"{re.escape(prefix)}(\d{{6}})")
    with Session(engine) as s:
        ids = s.scalars(select(Order.id).where(Order.id.like(f"{prefix}%"))).all()
    taken = [int(m.group(1)) for oid in ids if (m := pattern.fullmatch(oid)) and int(m.group(1)) >= ORDER_BLOCK_START]
    return max(taken, default=ORDER_BLOCK_START - 1) + 1


def make_shoppers(count: int, first: int, prefix: str) -> list[Shopper]:
    if first + 2 * count - 1 > ORDER_NUMBER_MAX:
        raise ValueError(f"no room for {count} more load-test customers above {prefix}{first}: use a fresh "
                         "database (--database-url) or delete earlier load-test orders")
    shoppers = []
    for i in range(count):
        number = first + 2 * i
        sku, name, words, _category, _price = ITEMS[i % len(ITEMS)]
        shoppers.append(Shopper(index=i, customer_id=f"LT{number}", email=f"lt{number}@example.com",
                                return_order=f"{prefix}{number}", item_sku=sku, item_name=name, item_words=words,
                                status_order=f"{prefix}{number + 1}"))
    return shoppers


def shop_fixtures(shoppers: list[Shopper], now: datetime) -> dict[str, Any]:
    def day(days: int) -> str:
        return (now + timedelta(days=days)).date().isoformat()

    customers, orders = [], []
    for sh in shoppers:
        _sku, _name, _words, category, price = ITEMS[sh.index % len(ITEMS)]
        customers.append({"id": sh.customer_id, "name": f"Load Tester {sh.index + 1}", "email": sh.email,
                          "zip": "94110"})
        orders.append({"id": sh.return_order, "customer": sh.customer_id,
                       "placed_at": (now - timedelta(days=9)).isoformat(timespec="seconds"), "status": "delivered",
                       "shipped_at": day(-8), "delivered_at": day(-5), "carrier": "UPS",
                       "tracking_number": f"1ZLT{sh.return_order[-6:]}01", "payment_method": "visa-4242",
                       "shipping_zip": "94110",
                       "items": [{"sku": sh.item_sku, "name": sh.item_name, "qty": 1, "price": price,
                                  "category": category}]})
        orders.append({"id": sh.status_order, "customer": sh.customer_id,
                       "placed_at": (now - timedelta(days=3)).isoformat(timespec="seconds"), "status": "in_transit",
                       "shipped_at": day(-2), "expected_delivery": day(2), "carrier": "UPS",
                       "tracking_number": f"1ZLT{sh.status_order[-6:]}02", "payment_method": "visa-4242",
                       "shipping_zip": "94110",
                       "items": [{"sku": "HKS-L", "name": "Hiking Socks 3-Pack (L)", "qty": 1, "price": 24.00,
                                  "category": "apparel"}]})
    return {"customers": customers, "orders": orders}


def load_shop(engine: Engine, count: int, prefix: str, now: datetime) -> list[Shopper]:
    """``count`` fresh load-test customers, each with its two orders, in the database."""
    shoppers = make_shoppers(count, first_free_number(engine, prefix), prefix)
    load_fixtures(engine, shop_fixtures(shoppers, now), source="loadtest")
    return shoppers


# ---- what each session talks about ---------------------------------------------------------------
def plan(index: int, turns: int, double_yes: bool) -> tuple[str, ...]:
    """Segments filling ``turns`` (nominal lengths): a return (when it fits) second, the session's mix
    around it as far as it fits, then one-turn filler."""
    return_turns = SEGMENT_TURNS["return"] + (1 if double_yes else 0)
    with_return = turns >= return_turns
    left = turns - return_turns if with_return else turns
    chosen: list[str] = []
    for seg in _MIXES[index % len(_MIXES)]:
        if SEGMENT_TURNS[seg] <= left:
            chosen.append(seg)
            left -= SEGMENT_TURNS[seg]
    if with_return:
        chosen.insert(min(1, len(chosen)), "return")
    chosen += [_FILLER[(index + k) % len(_FILLER)] for k in range(left)]
    return tuple(chosen)


def says(segment: str, shopper: Shopper, k: int) -> str:
    """The opening message of a segment (``k`` varies the wording between sessions and turns)."""
    if segment == "greet":
        return GREETINGS[k % len(GREETINGS)]
    if segment == "thanks":
        return THANKS[k % len(THANKS)]
    if segment == "faq":
        return FAQ_QUESTIONS[k % len(FAQ_QUESTIONS)]
    if segment == "status":
        return f"where is my order {shopper.status_order}?"
    if segment == "track":
        return f"any news on {shopper.status_order}?"
    if segment == "handoff":
        return HANDOFF_ASK
    if segment == "return":
        return f"I want to return the {shopper.item_words} from {shopper.return_order}, my email is {shopper.email}"
    raise ValueError(f"unknown segment {segment!r}")


def return_reply(kind: str, shopper: Shopper) -> str | None:
    """The shopper's answer to the return flow's question ``kind``; None: not a question it answers."""
    return {
        "ask_verification": shopper.email, "ask_email": shopper.email, "return_pick_order": shopper.return_order,
        "return_pick_items": shopper.item_words, "return_ask_reason": REASONS[shopper.index % len(REASONS)],
        "return_ask_condition": "yes, it's unused with the tags on", "return_summary": "yes",
    }.get(kind)
