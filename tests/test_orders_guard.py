"""Order facts come from the database, and the guard rejects any order fact that is not in them.

The demo shop's fixed entries cover every status; each test reads them back from a real database,
builds the facts, and checks the template reply and mutated model replies against the guard.
"""

from __future__ import annotations

import re

import pytest

from app.db import make_engine, migrate
from app.guard import Guard
from app.orders import STATUS_TEXT, order_facts
from app.seed import DEFAULT_NOW, seed_database
from app.store import ShopStore
from app.templates import render

DEMO = {"SD-10001": "delivered", "SD-10002": "in_transit", "SD-10003": "processing", "SD-10004": "delayed",
        "SD-10005": "pending", "SD-10006": "shipped", "SD-10007": "cancelled", "SD-10008": "returned"}
G = Guard()
MONTHS = ("January", "February", "March", "April", "June", "July", "August", "September", "October", "November",
          "December")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ShopStore:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('guard') / 'shop.db'}")
    migrate(engine)
    seed_database(engine, customers=10, orders=30, now=DEFAULT_NOW)
    return ShopStore(engine)


@pytest.fixture(scope="module")
def facts(store):
    return {oid: order_facts(store.get_order(oid), DEFAULT_NOW) for oid in DEMO}


def test_the_demo_shop_has_an_order_in_every_status(store):
    assert {store.get_order(oid).status for oid in DEMO} == set(STATUS_TEXT)


@pytest.mark.parametrize("order_id", DEMO)
def test_the_template_states_the_orders_facts_from_the_database_and_passes_the_guard(store, facts, order_id):
    order, f = store.get_order(order_id), facts[order_id]
    text = render(f)
    assert order.status == DEMO[order_id]
    assert f"Your order {order_id} {'has' if order.status == 'shipped' else 'is'} {STATUS_TEXT[order.status]}." \
        in text
    assert all(item.name in text for item in order.items)
    for value in (order.carrier, order.tracking_number, order.latest_event and order.latest_event.description):
        if value:
            assert value in text
    assert G.check(text, f).accepted, G.check(text, f)


def test_what_each_status_says_comes_from_its_rows(facts):
    assert "It was delivered on" in render(facts["SD-10001"])
    assert "Expected delivery: March 17, 2026" in render(facts["SD-10002"])  # today + 2 business days
    assert "Latest update: Arrived at facility, Sacramento, CA" in render(facts["SD-10002"])
    delayed = render(facts["SD-10004"])
    assert "severe weather" in delayed and "hasn't been delivered yet" in delayed  # expected date has passed
    assert facts["SD-10003"].data["expected"] == "" and facts["SD-10003"].data["tracking_number"] == ""
    assert "You were not charged" in render(facts["SD-10007"])  # its payment was only authorised
    assert "return RMA-1001 is refunded (refund $98.00)" in render(facts["SD-10008"])


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+", text))


@pytest.mark.parametrize("order_id", DEMO)
def test_the_guard_rejects_order_facts_that_are_not_in_the_database(facts, order_id):
    f = facts[order_id]
    d = f.data
    base = f"Your order {order_id} is now {d['status_text']}." + (f" Tracking: {d['tracking_number']}."
                                                               if d["tracking_number"] else "")
    assert G.check(base, f).accepted
    others = [facts[o].data for o in DEMO if o != order_id]
    numbers = _numbers(" ".join(str(v) for v in d.values()))
    free_day = next(str(n) for n in range(28, 0, -1) if str(n) not in numbers)
    month = next(m for m in MONTHS if m.lower() not in str(d).lower())
    carrier = next(c for c in ("FedEx", "DHL", "USPS", "UPS") if c.lower() not in str(d).lower())
    status = next(s for s in ("cancelled", "returned", "delayed", "pending", "processing") if s not in str(d))
    tracking = next(o["tracking_number"] for o in others if o["tracking_number"])
    wrong = {
        "another order's tracking number": f" Tracking: {tracking}.",
        "another order id": f" Your order {next(iter(o['order_id'] for o in others))} too.",
        "a day not in the facts": f" It arrives on March {free_day}.",
        "a month not in the facts": f" It was placed in {month}.",
        "a carrier not in the facts": f" It ships with {carrier}.",
        "a status not in the facts": f" It was {status}.",
        "a weekday": " It arrives on Tuesday.",
        "an amount": " You paid $1234.56.",
    }
    for what, extra in wrong.items():
        verdict = G.check(base + extra, f)
        assert not verdict.accepted, (what, extra, verdict)
        assert any(r.startswith("invented:") for r in verdict.reasons), (what, verdict)


@pytest.mark.parametrize("order_id", DEMO)
def test_the_guard_rejects_a_reply_that_drops_the_order_id_or_status(facts, order_id):
    f = facts[order_id]
    assert "missing:" + order_id in G.check("Your order is on its way.", f).reasons
    no_status = f"Your order {order_id} is fine."
    assert f"missing:{f.data['status_text']}" in G.check(no_status, f).reasons
