"""The flows' writes on SQLite and PostgreSQL: one transaction each, idempotent, re-checked, audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import AuditRow, Order, Payment, Product, Return, ReturnItem
from app.fixtures import load_fixtures
from app.writes import FlowWriter, ReturnLine, WriteRequest

AT = datetime(2026, 3, 15, 10, 0)
SHOP = {
    "customers": [{"id": "C1", "name": "Cara", "email": "cara@example.com", "zip": "94110"},
                  {"id": "C2", "name": "Dan", "email": "dan@example.com", "zip": "10027"}],
    "products": [{"sku": "TRG-MOS-10", "product": "trg", "name": "Trail Runner (Moss, 10)", "price": 139.0,
                  "category": "shoes", "stock": 1}],
    "orders": [
        {"id": "SD-50001", "customer": "C1", "placed_at": "2026-03-01", "status": "delivered",
         "delivered_at": "2026-03-05", "payment_method": "visa-4242",
         "items": [{"sku": "ECM-CRM", "name": "Camp Mug", "qty": 3, "price": 18.0, "category": "home"},
                   {"sku": "TRG-SLT-09", "name": "Trail Runner (Slate, 9)", "qty": 1, "price": 139.0,
                    "category": "shoes"}]},
        {"id": "SD-50002", "customer": "C1", "placed_at": "2026-03-14", "status": "processing",
         "payment_method": "visa-4242", "items": [{"sku": "MCS", "name": "Sweater", "qty": 1, "price": 98.0,
                                                   "category": "apparel"}]},
    ],
}


TWO_MUGS = (ReturnLine("ECM-CRM", 2),)


def request(key: str, order: str = "SD-50001", lines=TWO_MUGS, customer: str = "C1",
            refund: str = "36.00") -> WriteRequest:
    return WriteRequest(key=key, session_id="s1", customer_id=customer, order_id=order, clauses=("R-WINDOW-DEFAULT",),
                        lines=tuple(lines), refund_amount=Decimal(refund), refund_method="visa-4242", reason="too big")


def count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_return_is_one_transaction_with_items_and_an_audit_row(db_engine):
    load_fixtures(db_engine, SHOP)
    done = FlowWriter(db_engine).create_return(request("k1"), AT)
    assert done.ok and done.created and done.object_id == "RMA-1001"
    with Session(db_engine) as s:
        ret = s.get(Return, "RMA-1001")
        assert (ret.status, ret.kind, ret.refund_amount, ret.refund_method) == ("requested", "return",
                                                                                Decimal("36.00"), "visa-4242")
        assert [(i.sku, i.qty) for i in ret.items] == [("ECM-CRM", 2)]
        audit = s.scalars(select(AuditRow)).one()
        assert (audit.action, audit.object_id, audit.clauses, audit.customer_id) == (
            "create_return", "RMA-1001", ["R-WINDOW-DEFAULT"], "C1")


def test_the_same_confirmation_twice_and_concurrently_writes_one_return(db_engine):
    load_fixtures(db_engine, SHOP)
    writer = FlowWriter(db_engine)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: writer.create_return(request("same-key"), AT), range(4)))
    assert {r.object_id for r in results} == {"RMA-1001"} and sum(r.created for r in results) == 1
    assert writer.create_return(request("same-key"), AT).created is False
    assert count(db_engine, Return) == 1 and count(db_engine, AuditRow) == 1 and count(db_engine, ReturnItem) == 1


def test_different_returns_at_once_get_different_rma_ids(db_engine):
    load_fixtures(db_engine, SHOP)
    writer = FlowWriter(db_engine)
    lines = [(ReturnLine("ECM-CRM", 1),), (ReturnLine("ECM-CRM", 1),), (ReturnLine("TRG-SLT-09", 1),)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: writer.create_return(request(f"k{i}", lines=lines[i]), AT), range(3)))
    assert all(r.ok for r in results) and len({r.object_id for r in results}) == 3


def test_more_than_was_ordered_or_someone_elses_order_writes_nothing(db_engine):
    load_fixtures(db_engine, SHOP)
    writer = FlowWriter(db_engine)
    assert writer.create_return(request("a", lines=(ReturnLine("ECM-CRM", 4),)), AT).problem == "not_returnable"
    assert writer.create_return(request("b", customer="C2"), AT).problem == "not_your_order"
    assert writer.create_return(request("c", lines=(ReturnLine("ECM-CRM", 3),)), AT).ok
    assert writer.create_return(request("d", lines=(ReturnLine("ECM-CRM", 1),)), AT).problem == "not_returnable"
    assert count(db_engine, Return) == 1 and count(db_engine, AuditRow) == 1


def test_an_exchange_takes_the_replacement_out_of_stock_or_writes_nothing(db_engine):
    load_fixtures(db_engine, SHOP)
    writer = FlowWriter(db_engine)
    line = (ReturnLine("TRG-SLT-09", 1, "TRG-MOS-10"),)
    assert writer.create_return(request("x1", lines=line, refund="0"), AT, kind="exchange").ok
    with Session(db_engine) as s:
        assert s.get(Product, "TRG-MOS-10").stock == 0
        assert s.scalars(select(ReturnItem)).one().replacement_sku == "TRG-MOS-10"
    other = (ReturnLine("ECM-CRM", 1, "TRG-MOS-10"),)  # the last one is gone now
    assert writer.create_return(request("x2", lines=other, refund="0"), AT, kind="exchange").problem == "out_of_stock"
    assert count(db_engine, Return) == 1


def test_cancel_refunds_the_payment_once_and_refuses_a_shipped_order(db_engine):
    load_fixtures(db_engine, SHOP)
    writer = FlowWriter(db_engine)
    allowed = frozenset({"pending", "processing"})
    req = request("c1", order="SD-50002", lines=(), refund="98.00")
    assert writer.cancel_order(req, AT, allowed).created
    assert writer.cancel_order(req, AT, allowed).created is False  # a repeated yes
    with Session(db_engine) as s:
        assert s.get(Order, "SD-50002").status == "cancelled"
        assert [p.status for p in s.scalars(select(Payment).where(Payment.order_id == "SD-50002"))] == ["refunded"]
    assert count(db_engine, AuditRow, AuditRow.action == "cancel_order") == 1
    shipped = request("c2", order="SD-50001", lines=())
    assert writer.cancel_order(shipped, AT, allowed).problem == "not_cancellable"
