"""The shop store: read views of orders and customers, and the few writes handlers make.

Handlers see frozen views (``OrderView``), never ORM rows, so nothing outside this module can
change the database by accident. Every write is one transaction and idempotent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db import (
    Customer,
    HandoffTicket,
    Order,
    Product,
    Return,
    SessionRow,
    Shipment,
    VerificationAttempt,
)


@dataclass(frozen=True)
class ItemView:
    sku: str
    name: str
    qty: int
    price: Decimal
    category: str
    final_sale: bool


@dataclass(frozen=True)
class EventView:
    at: datetime
    location: str
    description: str


@dataclass(frozen=True)
class PaymentView:
    method: str
    amount: Decimal
    status: str  # authorized | captured | refunded


@dataclass(frozen=True)
class ReturnView:
    id: str
    status: str  # requested | received | refunded | rejected
    refund_amount: Decimal
    created_at: datetime
    items: tuple[tuple[str, int], ...] = ()  # (sku, qty)
    kind: str = "return"  # return | exchange
    refund_method: str = ""


@dataclass(frozen=True)
class VariantView:
    """A product variant (size/colour) of the shop's catalogue, for exchanges."""

    sku: str
    product: str
    name: str
    attributes: dict[str, str]
    price: Decimal
    stock: int


@dataclass(frozen=True)
class OrderView:
    id: str
    customer_id: str
    status: str
    placed_at: datetime
    items: tuple[ItemView, ...]
    carrier: str = ""
    tracking_number: str = ""
    shipped_at: date | None = None
    expected_delivery: date | None = None
    delivered_at: date | None = None
    events: tuple[EventView, ...] = ()
    payment_method: str = ""
    payments: tuple[PaymentView, ...] = ()
    shipping_zip: str = ""
    returns: tuple[ReturnView, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((i.price * i.qty for i in self.items), Decimal("0"))

    @property
    def latest_event(self) -> EventView | None:
        return self.events[-1] if self.events else None


def _order_view(o: Order) -> OrderView:
    s: Shipment | None = o.shipment
    return OrderView(
        id=o.id, customer_id=o.customer_id, status=o.status, placed_at=o.placed_at,
        items=tuple(ItemView(i.sku, i.name, i.qty, Decimal(i.price), i.category, i.final_sale) for i in o.items),
        carrier=s.carrier if s else "", tracking_number=s.tracking_number if s else "",
        shipped_at=s.shipped_at if s else None, expected_delivery=s.expected_delivery if s else None,
        delivered_at=s.delivered_at if s else None,
        events=tuple(EventView(e.at, e.location, e.description) for e in s.events) if s else (),
        payment_method=o.payment_method, shipping_zip=o.shipping_zip,
        payments=tuple(PaymentView(p.method, Decimal(p.amount), p.status) for p in o.payments),
        returns=tuple(ReturnView(r.id, r.status, Decimal(r.refund_amount), r.created_at,
                                 tuple((i.sku, i.qty) for i in r.items), r.kind, r.refund_method)
                      for r in o.returns),
    )


_ORDER_LOAD = (
    selectinload(Order.items),
    selectinload(Order.shipment).selectinload(Shipment.events),
    selectinload(Order.payments),
    selectinload(Order.returns).selectinload(Return.items),
)


class ShopStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- reads --------------------------------------------------------------------------------
    def get_order(self, order_id: str) -> OrderView | None:
        with Session(self.engine) as s:
            o = s.scalars(select(Order).where(Order.id == order_id).options(*_ORDER_LOAD)).first()
            return _order_view(o) if o else None

    def orders_of(self, customer_id: str) -> list[OrderView]:
        with Session(self.engine) as s:
            rows = s.scalars(select(Order).where(Order.customer_id == customer_id)
                             .order_by(Order.placed_at.desc(), Order.id.desc()).options(*_ORDER_LOAD)).all()
            return [_order_view(o) for o in rows]

    def customer_for_order(self, order_id: str, email: str | None = None, zip_code: str | None = None) -> str | None:
        """The order's customer id when the email or the billing zip matches, else None.

        The billing zip is the customer's; the shipping zip is not accepted because it is printed on
        the parcel, for anyone who handles it to read. Callers must treat "no such order" and "wrong
        details" alike (no enumeration).
        """
        with Session(self.engine) as s:
            row = s.execute(select(Order.customer_id, Customer.email, Customer.zip)
                            .join(Customer, Customer.id == Order.customer_id)
                            .where(Order.id == order_id)).first()
        if row is None:
            return None
        customer_id, cust_email, cust_zip = row
        if email and _same(email.strip().lower(), (cust_email or "").strip().lower()):
            return customer_id
        if zip_code and cust_zip and _same(_zip(zip_code), _zip(cust_zip)):
            return customer_id
        return None

    def variants_of(self, sku: str) -> list[VariantView]:
        """Every variant of the product ``sku`` belongs to (itself included), in catalogue order."""
        with Session(self.engine) as s:
            family = s.scalar(select(Product.product).where(Product.sku == sku))
            if family is None:
                return []
            rows = s.scalars(select(Product).where(Product.product == family).order_by(Product.sku)).all()
            return [VariantView(p.sku, p.product, p.name, {str(k): str(v) for k, v in (p.attributes or {}).items()},
                                Decimal(p.price), int(p.stock)) for p in rows]

    def customer_exists(self, customer_id: str) -> bool:
        with Session(self.engine) as s:
            return s.get(Customer, customer_id) is not None

    def customer_name(self, customer_id: str) -> str:
        with Session(self.engine) as s:
            c = s.get(Customer, customer_id)
            return c.name if c else ""

    def failed_verifications(self, client_id: str, since: datetime) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(VerificationAttempt).where(
                VerificationAttempt.client_id == client_id, VerificationAttempt.success.is_(False),
                VerificationAttempt.at >= since)) or 0)

    def failure_times(self, since: datetime, session_id: str | None = None,
                      client_id: str | None = None) -> list[datetime]:
        """When the failed verifications of a session (or of a client address) since ``since`` happened."""
        query = select(VerificationAttempt.at).where(VerificationAttempt.success.is_(False),
                                                     VerificationAttempt.at >= since)
        if session_id is not None:
            query = query.where(VerificationAttempt.session_id == session_id)
        if client_id is not None:
            query = query.where(VerificationAttempt.client_id == client_id)
        with Session(self.engine) as s:
            return sorted(s.scalars(query))

    def session_customer(self, session_id: str) -> str | None:
        """Who a saved session is verified as (staff views)."""
        with Session(self.engine) as s:
            return s.scalar(select(SessionRow.customer_id).where(SessionRow.id == session_id))

    # ---- writes -------------------------------------------------------------------------------
    def record_verification(self, session_id: str, client_id: str, at: datetime, success: bool,
                            method: str = "", reason: str = "") -> None:
        with Session(self.engine) as s, s.begin():
            s.add(VerificationAttempt(session_id=session_id, client_id=client_id, at=at, success=success,
                                      method=method, reason=reason))

    def open_handoff_ticket(self, session_id: str, customer_id: str | None, summary: str,
                            at: datetime) -> tuple[str, bool]:
        """Open the session's ticket; returns (ticket id, created now). A second call opens none."""
        existing = self._ticket_of(session_id)
        if existing:
            return existing, False
        ticket_id = f"HT-{secrets.token_hex(4).upper()}"
        try:
            with Session(self.engine) as s, s.begin():
                s.add(HandoffTicket(id=ticket_id, session_id=session_id, customer_id=customer_id,
                                    summary=summary, status="open", created_at=at))
        except IntegrityError:  # a concurrent double-click opened it first
            other = self._ticket_of(session_id)
            if other is None:
                raise
            return other, False
        return ticket_id, True

    def _ticket_of(self, session_id: str) -> str | None:
        with Session(self.engine) as s:
            return s.scalar(select(HandoffTicket.id).where(HandoffTicket.session_id == session_id))

    # ---- state snapshots (evals' final-state checks, staff views) -------------------------------
    def snapshot(self, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        with Session(self.engine) as s:
            orders = s.scalars(select(Order).where(Order.id.in_(order_ids))).all()
            returns = s.scalars(select(Return).where(Return.order_id.in_(order_ids))
                                .options(selectinload(Return.items))).all()
            tickets = s.scalars(select(HandoffTicket)).all()
            return {
                "orders": [{"id": o.id, "status": o.status} for o in orders],
                "returns": [{"id": r.id, "order": r.order_id, "status": r.status, "kind": r.kind,
                             "refund_amount": float(r.refund_amount),
                             "items": [{"sku": i.sku, "qty": i.qty, **({"replacement_sku": i.replacement_sku}
                                                                       if i.replacement_sku else {})}
                                       for i in r.items]} for r in returns],
                "handoff_tickets": [{"id": t.id, "session_id": t.session_id, "status": t.status,
                                     "customer": t.customer_id} for t in tickets],
            }


def _same(a: str, b: str) -> bool:
    """Constant-time equality: the comparison does not tell how much of a guess was right."""
    return secrets.compare_digest(a.encode(), b.encode())


def _zip(value: str) -> str:
    """US ZIP+4 and spacing variants compare equal: ``94110-1234`` -> ``94110``, ``sw1a 1aa`` -> ``SW1A1AA``."""
    text = value.strip().upper().replace(" ", "")
    return text[:5] if len(text) == 10 and text[5] == "-" and text[:5].isdigit() else text
