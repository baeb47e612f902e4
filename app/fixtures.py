"""Loading shop rows in the transcript-fixture format (design.md section 5) into the database.

One format for every way data comes in: eval fixtures, the seeded demo shop, and (issue 4)
``shopdesk import``. Validation is strict (unknown keys are errors, naming the row) and the load is
one transaction: a bad row means nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db import Customer, Order, OrderItem, Payment, Product, Return, ReturnItem, Shipment, TrackingEvent

ORDER_STATUSES = ("pending", "processing", "shipped", "in_transit", "delayed", "delivered", "cancelled", "returned")

_KEYS = {
    "customers": ({"id", "name", "email"}, {"zip", "phone", "address"}),
    "products": ({"sku", "name", "price", "category"}, {"product", "attributes", "stock", "final_sale"}),
    "orders": ({"id", "customer", "placed_at", "status", "items"},
               {"shipped_at", "expected_delivery", "delivered_at", "carrier", "tracking_number",
                "tracking_events", "payment_method", "shipping_zip", "note"}),
    "returns": ({"id", "order", "items", "status"}, {"refund_amount", "created_at", "reason"}),
}
_ITEM_KEYS = ({"sku", "name", "qty", "price"}, {"category", "final_sale"})
_EVENT_KEYS = ({"at", "description"}, {"location"})
_RETURN_ITEM_KEYS = ({"sku", "qty"}, set())


class FixtureError(ValueError):
    pass


def _check_keys(row: Any, required: set[str], optional: set[str], where: str) -> None:
    if not isinstance(row, Mapping):
        raise FixtureError(f"{where}: expected a mapping, got {type(row).__name__}")
    missing = required - row.keys()
    unknown = row.keys() - required - optional
    if missing:
        raise FixtureError(f"{where}: missing {sorted(missing)}")
    if unknown:
        raise FixtureError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(required | optional)})")


def _dt(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError as exc:
        raise FixtureError(f"{where}: {value!r} is not an ISO date/time") from exc


def _date(value: Any, where: str) -> date | None:
    return None if value in (None, "") else _dt(value, where).date()


def _money(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise FixtureError(f"{where}: {value!r} is not an amount") from exc
    if amount < 0:
        raise FixtureError(f"{where}: amount must not be negative")
    return amount


def validate(fixtures: Mapping[str, Any], source: str = "fixtures") -> None:
    unknown = set(fixtures) - set(_KEYS)
    if unknown:
        raise FixtureError(f"{source}: unknown tables {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    for table, (required, optional) in _KEYS.items():
        for i, row in enumerate(fixtures.get(table) or []):
            where = f"{source}: {table}[{i}]"
            _check_keys(row, required, optional, where)
            if table == "orders":
                if row["status"] not in ORDER_STATUSES:
                    raise FixtureError(f"{where}: status {row['status']!r} not in {ORDER_STATUSES}")
                for j, item in enumerate(row["items"]):
                    _check_keys(item, *_ITEM_KEYS, f"{where}.items[{j}]")
                for j, ev in enumerate(row.get("tracking_events") or []):
                    _check_keys(ev, *_EVENT_KEYS, f"{where}.tracking_events[{j}]")
            if table == "returns":
                for j, item in enumerate(row["items"]):
                    _check_keys(item, *_RETURN_ITEM_KEYS, f"{where}.items[{j}]")


def load_fixtures(engine: Engine, fixtures: Mapping[str, Any], source: str = "fixtures") -> dict[str, int]:
    """Validate, then insert all rows in one transaction. Returns counts per table."""
    validate(fixtures, source)
    counts = {t: len(fixtures.get(t) or []) for t in _KEYS}
    with Session(engine) as s, s.begin():
        for c in fixtures.get("customers") or []:
            s.add(Customer(id=str(c["id"]), name=c["name"], email=str(c["email"]).lower(),
                           zip=str(c.get("zip", "")), phone=str(c.get("phone", "")),
                           address=str(c.get("address", ""))))
        for i, p in enumerate(fixtures.get("products") or []):
            where = f"{source}: products[{i}]"
            s.add(Product(sku=p["sku"], product=p.get("product", p["sku"]), name=p["name"],
                          attributes=dict(p.get("attributes") or {}), price=_money(p["price"], where),
                          category=p["category"], stock=int(p.get("stock", 0)),
                          final_sale=bool(p.get("final_sale", False))))
        s.flush()
        for i, o in enumerate(fixtures.get("orders") or []):
            where = f"{source}: orders[{i}]"
            order = Order(id=o["id"], customer_id=str(o["customer"]), placed_at=_dt(o["placed_at"], where),
                          status=o["status"], payment_method=o.get("payment_method", ""),
                          shipping_zip=str(o.get("shipping_zip", "")), note=o.get("note", ""))
            s.add(order)
            for item in o["items"]:
                s.add(OrderItem(order=order, sku=item["sku"], name=item["name"], qty=int(item["qty"]),
                                price=_money(item["price"], where), category=item.get("category", "other"),
                                final_sale=bool(item.get("final_sale", False))))
            if any(o.get(k) for k in ("carrier", "tracking_number", "shipped_at", "tracking_events")):
                shipment = Shipment(order=order, carrier=o.get("carrier", ""),
                                    tracking_number=str(o.get("tracking_number", "")),
                                    shipped_at=_date(o.get("shipped_at"), where),
                                    expected_delivery=_date(o.get("expected_delivery"), where),
                                    delivered_at=_date(o.get("delivered_at"), where))
                s.add(shipment)
                s.flush()
                for ev in o.get("tracking_events") or []:
                    s.add(TrackingEvent(shipment_id=shipment.id, at=_dt(ev["at"], where),
                                        location=ev.get("location", ""), description=ev["description"]))
            elif o.get("expected_delivery") or o.get("delivered_at"):
                s.add(Shipment(order=order, expected_delivery=_date(o.get("expected_delivery"), where),
                               delivered_at=_date(o.get("delivered_at"), where)))
            if o.get("payment_method"):
                total = sum((_money(it["price"], where) * int(it["qty"]) for it in o["items"]), Decimal("0"))
                s.add(Payment(order_id=order.id, method=o["payment_method"], amount=total,
                              status="captured" if o["status"] not in ("pending", "cancelled") else "authorized",
                              at=_dt(o["placed_at"], where)))
        s.flush()
        for i, r in enumerate(fixtures.get("returns") or []):
            where = f"{source}: returns[{i}]"
            ret = Return(id=r["id"], order_id=r["order"], status=r["status"], reason=r.get("reason", ""),
                         refund_amount=_money(r.get("refund_amount", 0), where),
                         created_at=_dt(r.get("created_at", "2000-01-01"), where))
            s.add(ret)
            for item in r["items"]:
                s.add(ReturnItem(return_id=r["id"], sku=item["sku"], qty=int(item["qty"])))
    return counts
