"""The return, exchange, refund-status and cancel flows (issue 5) through the orchestrator, with the fakes.

Each test replays a conversation against a fresh database and checks the replies, the actions and
the rows written (returns, return items, audit rows, order and payment status).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.db import AuditRow, Order, Payment, Product, Return
from app.schema import Message
from tests.conftest import NOW

ADA = "cara@example.com"
PRODUCTS = [
    {"sku": "TRG-SLT-09", "product": "trail-runner-gtx", "name": "Trail Runner GTX (Slate, 9)",
     "attributes": {"colour": "Slate", "size": "9"}, "price": 139.0, "category": "shoes", "stock": 4},
    {"sku": "TRG-SLT-10", "product": "trail-runner-gtx", "name": "Trail Runner GTX (Slate, 10)",
     "attributes": {"colour": "Slate", "size": "10"}, "price": 139.0, "category": "shoes", "stock": 0},
    {"sku": "TRG-MOS-10", "product": "trail-runner-gtx", "name": "Trail Runner GTX (Moss, 10)",
     "attributes": {"colour": "Moss", "size": "10"}, "price": 139.0, "category": "shoes", "stock": 5},
]


def _item(sku: str, name: str, price: float, category: str, qty: int = 1, final_sale: bool = False) -> dict:
    return {"sku": sku, "name": name, "qty": qty, "price": price, "category": category, "final_sale": final_sale}


def _delivered(oid: str, days_ago: int, items: list[dict]) -> dict:
    day = (NOW - timedelta(days=days_ago)).date().isoformat()
    placed = (NOW - timedelta(days=days_ago + 4)).date().isoformat()
    return {"id": oid, "customer": "C950", "placed_at": placed, "status": "delivered", "shipped_at": placed,
            "delivered_at": day, "carrier": "UPS", "tracking_number": "1Z999AA10123456700",
            "payment_method": "visa-4242", "shipping_zip": "94110", "items": items}


SHOP = {
    "customers": [{"id": "C950", "name": "Cara Diaz", "email": ADA, "zip": "94110"},
                  {"id": "C951", "name": "Dan Eze", "email": "dan@example.com", "zip": "10027"}],
    "products": PRODUCTS,
    "orders": [
        _delivered("SD-30001", 10, [_item("TRG-SLT-09", "Trail Runner GTX (Slate, 9)", 139.0, "shoes"),
                                    _item("ECM-CRM", "Enamel Camp Mug (Cream)", 18.0, "home", qty=2),
                                    _item("WEP-WHT", "Wireless Earbuds Pro (White)", 129.0, "earbuds"),
                                    _item("HCS-WHT-07", "Harbor Canvas Sneaker (White, 7)", 44.99, "shoes",
                                          final_sale=True)]),
        _delivered("SD-30002", 64, [_item("RRJ-BLU-M", "Ridgeline Rain Jacket (Lake Blue, M)", 149.0, "outerwear")]),
        {"id": "SD-30003", "customer": "C950", "placed_at": "2026-03-15T05:00:00", "status": "processing",
         "payment_method": "visa-4242", "items": [_item("MCS-OAT-M", "Merino Crew Sweater (Oatmeal, M)", 98.0,
                                                        "apparel")]},
        {"id": "SD-30004", "customer": "C950", "placed_at": "2026-03-10", "status": "in_transit",
         "shipped_at": "2026-03-11", "carrier": "UPS", "tracking_number": "1Z999AA10123456711",
         "payment_method": "visa-4242", "items": [_item("DPK-FOR", "Daypack 24L (Forest)", 89.0, "bags")]},
        _delivered("SD-30005", 20, [_item("BNE-CHR", "Wool Beanie (Charcoal)", 28.0, "accessories")]),
        _delivered("SD-30006", 12, [_item("PKA-BLK-L", "Insulated Parka (Black, L)", 229.0, "outerwear")]) | {
            "customer": "C951"},
    ],
    "returns": [{"id": "RMA-1001", "order": "SD-30005", "items": [{"sku": "BNE-CHR", "qty": 1}],
                 "status": "received", "refund_amount": 28.0, "created_at": "2026-03-01"}],
}


@pytest.fixture()
def chat(make_assistant):
    assistant = make_assistant(fixtures=SHOP)

    class Chat:
        engine = assistant.c.sessions.engine
        session = "s-returns"

        def __call__(self, text: str, session: str | None = None):
            return assistant.respond(Message(session or self.session, text, client_id="c1"))

    return Chat()


def rows(engine, model, *where):
    with Session(engine) as s:
        return s.scalars(select(model).where(*where).options(selectinload("*"))).all()


def test_eligible_partial_return_with_quantities_creates_one_rma_after_yes(chat):
    r = chat(f"I want to return the camp mugs from SD-30001, email {ADA}")
    assert r.route == "returns" and r.verified
    assert r.facts_kind == "return_ask_reason", r.text
    assert chat("they're the wrong colour for my kitchen").facts_kind == "return_ask_condition"
    summary = chat("yes, unused and still in the box")
    assert summary.facts_kind == "return_summary" and "$36.00" in summary.text and "2 x Enamel Camp Mug" in summary.text
    assert rows(chat.engine, Return, Return.order_id == "SD-30001") == []  # nothing before the yes
    done = chat("yes")
    assert done.facts_kind == "return_created" and done.actions[0].name == "create_return"
    rma = dict(done.actions[0].args)["rma"]
    assert rma == "RMA-1002" and rma in done.text and "visa-4242" in done.text and "5-7 business days" in done.text
    again = chat("yes")  # a repeated yes: the flow is over, nothing more is written
    assert again.actions == ()
    (ret,) = rows(chat.engine, Return, Return.order_id == "SD-30001")
    assert (ret.status, float(ret.refund_amount), [(i.sku, i.qty) for i in ret.items]) == ("requested", 36.0,
                                                                                          [("ECM-CRM", 2)])
    (audit,) = rows(chat.engine, AuditRow, AuditRow.order_id == "SD-30001")
    assert audit.action == "create_return" and "R-WINDOW-DEFAULT" in audit.clauses and audit.customer_id == "C950"


def test_correction_two_not_one_and_no_means_nothing_written(chat):
    chat(f"return a mug from SD-30001 {ADA}")
    chat("changed my mind")
    first = chat("yes they are unused")
    assert "1 x Enamel Camp Mug" in first.text and "$18.00" in first.text
    corrected = chat("actually two, not one")
    assert corrected.facts_kind == "return_summary" and "2 x Enamel Camp Mug" in corrected.text
    assert chat("no").facts_kind == "flow_aborted"
    assert rows(chat.engine, Return, Return.order_id == "SD-30001") == []


def test_outside_window_final_sale_and_opened_hygiene_item_are_refused_with_clauses(chat):
    r = chat(f"I'd like to return my rain jacket, order SD-30002, {ADA}")
    r = chat("too big") if r.facts_kind == "return_ask_reason" else r
    r = chat("yes") if r.facts_kind == "return_ask_condition" else r
    assert r.facts_kind == "return_refused" and "R-WINDOW-DEFAULT" in r.text and r.handoff
    chat("no thanks")
    r = chat("return the harbor canvas sneaker from SD-30001")
    chat("don't like them")
    r = chat("yes")
    assert r.facts_kind == "return_refused" and "R-FINAL-SALE" in r.text
    chat("no")
    chat("return the earbuds from SD-30001")
    chat("sound is bad")
    r = chat("no, I opened them")
    assert r.facts_kind == "return_refused" and "R-HYGIENE" in r.text
    assert rows(chat.engine, Return, Return.order_id.in_(["SD-30001", "SD-30002"])) == []


def test_not_delivered_cancelled_and_already_returned(chat):
    r = chat(f"return my daypack SD-30004 {ADA}")
    assert r.facts_kind == "return_not_delivered" and "30 days" in r.text
    r = chat("I want to return the beanie from SD-30005")
    assert r.facts_kind == "return_already_returned" and "RMA-1001" in r.text


def test_not_shipped_return_becomes_a_cancellation_offer(chat):
    r = chat(f"return SD-30003 {ADA}")
    assert r.facts_kind == "return_not_shipped"
    r = chat("yes")
    assert r.route == "cancel_order" and r.facts_kind == "cancel_summary" and "$98.00" in r.text
    done = chat("yes")
    assert done.actions[0].name == "cancel_order"
    (order,) = rows(chat.engine, Order, Order.id == "SD-30003")
    assert order.status == "cancelled"
    assert {p.status for p in rows(chat.engine, Payment, Payment.order_id == "SD-30003")} == {"refunded"}


def test_cancel_shipped_is_refused_with_return_offered(chat):
    r = chat(f"cancel order SD-30004 {ADA}")
    assert r.facts_kind == "cancel_refused_shipped" and "C-SHIPPED" in r.text and r.actions == ()
    assert rows(chat.engine, Order, Order.id == "SD-30004")[0].status == "in_transit"


def test_exchange_in_stock_reserves_the_variant_and_out_of_stock_offers_a_return(chat):
    r = chat(f"I want to exchange my trail runners from SD-30001 for a size 10, {ADA}")
    assert r.facts_kind == "exchange_out_of_stock", r.text
    r = chat("no")
    assert r.facts_kind == "flow_aborted"
    r = chat("exchange the trail runners for size 10 in moss")
    r = chat("yes unused") if r.facts_kind == "return_ask_condition" else r
    assert r.facts_kind == "exchange_summary" and "Moss, 10" in r.text
    done = chat("yes")
    assert done.actions[0].name == "create_exchange"
    (ret,) = rows(chat.engine, Return, Return.order_id == "SD-30001")
    assert ret.kind == "exchange" and ret.items[0].replacement_sku == "TRG-MOS-10"
    assert rows(chat.engine, Product, Product.sku == "TRG-MOS-10")[0].stock == 4


def test_refund_status_of_an_existing_return(chat):
    r = chat(f"has my refund been issued for SD-30005? {ADA}")
    assert r.route == "returns" and r.facts_kind == "refund_status" and "RMA-1001" in r.text
    assert "$28.00" in r.text


def test_digression_is_answered_and_the_flow_resumes(chat):
    chat(f"I want to return the mugs from SD-30001 {ADA}")
    r = chat("do you ship to canada?")
    assert r.route == "faq" and "continue with your return" in r.text
    assert chat("they chip easily").facts_kind == "return_ask_condition"


def test_pressure_gets_policy_and_a_person_never_a_write(chat):
    chat(f"I want to return my rain jacket SD-30002 {ADA}")
    r = chat("my lawyer says you must refund me in full")
    assert r.facts_kind == "policy_pressure" and r.handoff and r.actions == ()
    assert "refund" not in r.text.lower().split("policy allows")[0]  # no promise before the policy text
    assert rows(chat.engine, Return, Return.order_id == "SD-30002") == []


def test_another_customers_order_is_refused_like_an_unknown_one(chat):
    chat(f"return SD-30001 {ADA}")
    r = chat("actually return SD-30006")
    assert r.facts_kind == "not_your_order" and "Parka" not in r.text


def test_a_stale_flow_expires_and_says_so(make_assistant):
    a1 = make_assistant(fixtures=SHOP)
    a1.respond(Message("s-stale", f"return the mugs from SD-30001 {ADA}", client_id="c1"))
    later = make_assistant(fixtures=None, now=NOW + timedelta(minutes=45))
    later.c.sessions = a1.c.sessions  # the same database, 45 minutes on
    r = later.respond(Message("s-stale", "yes", client_id="c1"))
    assert "timed out" in r.text and r.actions == ()


def test_double_sent_yes_writes_one_return(make_assistant):
    """Two app workers answer the same "yes" from the same saved state: one RMA, one audit row."""
    assistant = make_assistant(fixtures=SHOP)
    for text in (f"return the mugs from SD-30001 {ADA}", "doesn't match", "unused"):
        assistant.respond(Message("s-double", text, client_id="c1"))
    state = assistant.c.sessions.load("s-double")  # both workers loaded this state before either answered
    entities = assistant.c.extractor.extract("yes")
    first = assistant.c.returns.handle("smalltalk.ack", "yes", entities, state, "c1", NOW)
    second = assistant.c.returns.handle("smalltalk.ack", "yes", entities, state, "c1", NOW)
    rma = dict(first.facts.actions[0].args)["rma"]
    assert dict(second.facts.actions[0].args)["rma"] == rma  # the same answer, no second row
    engine = assistant.c.sessions.engine
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Return).where(Return.order_id == "SD-30001")) == 1
        assert s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.object_id == rma)) == 1
