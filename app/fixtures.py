"""Loading shop rows in the transcript-fixture format (design.md section 5) into the database.

One format for every way data comes in: eval fixtures, the seeded demo shop, and ``shopdesk import``
(``app.importer`` turns JSON, YAML and CSV files into it). Validation is strict and complete: unknown
keys, missing keys, values of the wrong type or too long for their column are all reported, each
naming its row, before anything is written; the load is one transaction, so a bad row means nothing
is written. Values may be typed (JSON, YAML) or text (CSV): ``"2"``, ``"true"`` and ``"89.00"`` are
read the same as ``2``, ``true`` and ``89.0``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from app.db import Customer, Order, OrderItem, Payment, Product, Return, ReturnItem, Shipment, TrackingEvent
from app.errors import ShopdeskError

ORDER_STATUSES = ("pending", "processing", "shipped", "in_transit", "delayed", "delivered", "cancelled", "returned")
TABLES = ("customers", "products", "orders", "returns")

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

# field -> (kind, longest text the column holds); kinds: text, id, email, money, int, bool, datetime, date, attrs
_FIELDS: dict[str, dict[str, tuple[str, int]]] = {
    "customers": {"id": ("id", 32), "name": ("text", 200), "email": ("email", 320), "zip": ("text", 16),
                  "phone": ("text", 40), "address": ("text", 400)},
    "products": {"sku": ("id", 64), "product": ("id", 64), "name": ("text", 200), "price": ("money", 0),
                 "category": ("text", 40), "stock": ("int", 0), "final_sale": ("bool", 0),
                 "attributes": ("attrs", 0)},
    "orders": {"id": ("id", 32), "customer": ("id", 32), "placed_at": ("datetime", 0), "status": ("text", 20),
               "shipped_at": ("date", 0), "expected_delivery": ("date", 0), "delivered_at": ("date", 0),
               "carrier": ("text", 40), "tracking_number": ("text", 64), "payment_method": ("text", 40),
               "shipping_zip": ("text", 16), "note": ("text", 100_000)},
    "returns": {"id": ("id", 32), "order": ("id", 32), "status": ("text", 20), "refund_amount": ("money", 0),
                "created_at": ("datetime", 0), "reason": ("text", 400)},
    "items": {"sku": ("id", 64), "name": ("text", 200), "qty": ("qty", 0), "price": ("money", 0),
              "category": ("text", 40), "final_sale": ("bool", 0)},
    "tracking_events": {"at": ("datetime", 0), "location": ("text", 200), "description": ("text", 400)},
    "return_items": {"sku": ("id", 64), "qty": ("qty", 0)},
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0", ""}

# where(table, index, sub) names a row for error messages; sub is ("items", j) for a nested row
Locator = Callable[[str, int, tuple[str, int] | None], str]


class FixtureError(ShopdeskError, ValueError):
    """Rows that cannot be loaded; ``errors`` lists every problem as "where: what"."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        shown = self.errors[:50]
        more = f"\n... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__("\n".join(shown) + more)


# ---- value readers (validation and loading use the same ones) ----------------------------------------
def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date or date-time (e.g. 2026-03-05 or 2026-03-05T14:32:00Z)") \
            from None
    if parsed.tzinfo is not None:  # the database holds naive UTC
        parsed = (parsed - parsed.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return parsed


def _date(value: Any) -> date | None:
    return None if value in (None, "") else _dt(value).date()


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip()).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount (e.g. 89.00)") from None
    if amount < 0 or amount >= Decimal("100000000"):
        raise ValueError(f"{value!r} is out of range (0 to 99999999.99)")
    return amount


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(f"{value!r} is not a whole number")
    return int(text)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _check_value(field: str, kind: str, limit: int, value: Any) -> str | None:
    """None when ``value`` is fine for the field, else what is wrong with it."""
    try:
        if kind in ("text", "id", "email"):
            if isinstance(value, dict | list | bool):
                return f"{field}: expected text, got {value!r}"
            text = _text(value)
            if kind in ("id", "email") and not text:
                return f"{field}: must not be empty"
            if limit and len(text) > limit:
                return f"{field}: {len(text)} characters, at most {limit} fit"
            if kind == "email" and not _EMAIL.fullmatch(text):
                return f"{field}: {text!r} is not an email address"
        elif kind == "money":
            _money(value)
        elif kind in ("int", "qty"):
            number = _int(value)
            if number < (1 if kind == "qty" else 0):
                return f"{field}: {number} must be at least {1 if kind == 'qty' else 0}"
        elif kind == "bool":
            _bool(value)
        elif kind == "datetime":
            _dt(value)
        elif kind == "date":
            _date(value)
        elif kind == "attrs" and not (value in (None, "") or isinstance(value, Mapping)):
            return f"{field}: expected a mapping like {{colour: Slate, size: '9'}}, got {value!r}"
    except ValueError as exc:
        return f"{field}: {exc}"
    return None


def _row_problems(row: Any, keys: tuple[set[str], set[str]], fields: dict[str, tuple[str, int]]) -> list[str]:
    required, optional = keys
    if not isinstance(row, Mapping):
        return [f"expected a mapping, got {type(row).__name__}"]
    problems = []
    missing = sorted(required - row.keys())
    unknown = sorted(row.keys() - required - optional)
    if missing:
        problems.append(f"missing {missing}")
    if unknown:
        problems.append(f"unknown keys {unknown} (allowed: {sorted(required | optional)})")
    for name, (kind, limit) in fields.items():
        if name not in row:
            continue
        if row[name] is None or (isinstance(row[name], str) and not row[name].strip()):
            if name in required:
                problems.append(f"{name}: must not be empty")
            continue
        problem = _check_value(name, kind, limit, row[name])
        if problem:
            problems.append(problem)
    return problems


def _default_locator(source: str) -> Locator:
    def where(table: str, i: int, sub: tuple[str, int] | None = None) -> str:
        return f"{source}: {table}[{i}]" + (f".{sub[0]}[{sub[1]}]" if sub else "")

    return where


def row_errors(fixtures: Mapping[str, Any], where: Locator) -> list[str]:
    """Every problem of every row, each prefixed by ``where`` (no database access)."""
    errors: list[str] = []
    unknown = set(fixtures) - set(_KEYS)
    if unknown:
        errors.append(f"unknown tables {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    for table, keys in _KEYS.items():
        rows = fixtures.get(table) or []
        if not isinstance(rows, list):
            errors.append(f"{table}: expected a list of rows, got {type(rows).__name__}")
            continue
        seen: dict[str, int] = {}
        for i, row in enumerate(rows):
            errors += [f"{where(table, i, None)}: {p}" for p in _row_problems(row, keys, _FIELDS[table])]
            if not isinstance(row, Mapping):
                continue
            key = _text(row.get("sku" if table == "products" else "id"))
            if key and key in seen:
                first = where(table, seen[key], None)
                errors.append(f"{where(table, i, None)}: {key} appears twice (first at {first})")
            seen.setdefault(key, i)
            errors += _nested_errors(table, i, row, where)
    return errors


def _nested_errors(table: str, i: int, row: Mapping[str, Any], where: Locator) -> list[str]:
    errors: list[str] = []
    if table == "orders":
        if "status" in row and row["status"] not in ORDER_STATUSES:
            errors.append(f"{where(table, i, None)}: status {row['status']!r} not in {ORDER_STATUSES}")
        nested = (("items", _ITEM_KEYS, "items", True), ("tracking_events", _EVENT_KEYS, "tracking_events", False))
    elif table == "returns":
        nested = (("items", _RETURN_ITEM_KEYS, "return_items", True),)
    else:
        return errors
    for key, keys, fields, required in nested:
        values = row.get(key)
        if values in (None, "") and not required:
            continue
        if not isinstance(values, list) or (required and not values):
            errors.append(f"{where(table, i, None)}: {key} must be a non-empty list" if required
                          else f"{where(table, i, None)}: {key} must be a list")
            continue
        for j, sub in enumerate(values):
            errors += [f"{where(table, i, (key, j))}: {p}" for p in _row_problems(sub, keys, _FIELDS[fields])]
    return errors


def validate(fixtures: Mapping[str, Any], source: str = "fixtures", where: Locator | None = None) -> None:
    """Raise ``FixtureError`` listing every bad row; return quietly when all rows are fine."""
    if not isinstance(fixtures, Mapping):
        raise FixtureError(f"{source}: expected a mapping of tables ({', '.join(TABLES)})")
    errors = row_errors(fixtures, where or _default_locator(source))
    if errors:
        raise FixtureError(errors)


# ---- loading ------------------------------------------------------------------------------------------
BATCH = 1000  # orders per executemany round trip (and per progress step)


def load_fixtures(engine: Engine | Connection, fixtures: Mapping[str, Any], source: str = "fixtures",
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Validate, then insert all rows in one transaction. Returns counts per table.

    ``engine`` may be a Connection inside a transaction (the seed's replace): the rows join it.
    Rows go in as multi-row inserts, ``BATCH`` orders at a time; ``progress(n)`` after each batch.
    """
    validate(fixtures, source)
    counts = {t: len(fixtures.get(t) or []) for t in _KEYS}
    if isinstance(engine, Connection):
        _insert_all(engine, fixtures, progress)
    else:
        with engine.begin() as conn:
            _insert_all(conn, fixtures, progress)
    return counts


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table.__table__), rows)


def _insert_all(conn: Connection, fixtures: Mapping[str, Any], progress: Callable[[int], None] | None) -> None:
    _insert(conn, Customer, [_customer(c) for c in fixtures.get("customers") or []])
    _insert(conn, Product, [_product(p) for p in fixtures.get("products") or []])
    orders = list(fixtures.get("orders") or [])
    for start in range(0, len(orders), BATCH):
        batch = orders[start:start + BATCH]
        _insert(conn, Order, [_order(o) for o in batch])
        _insert(conn, OrderItem, [_item(o, i) for o in batch for i in o["items"]])
        _insert(conn, Payment, [p for o in batch if (p := _payment(o))])
        shipped = [(o, s) for o in batch if (s := _shipment(o))]
        if shipped:  # the events need the shipments' generated ids, returned in the rows' order
            table = Shipment.__table__
            ids = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                               [s for _, s in shipped]).scalars().all()
            _insert(conn, TrackingEvent, [{"shipment_id": sid, "at": _dt(e["at"]), "location": _text(e.get("location")),
                                           "description": _text(e["description"])}
                                          for (o, _), sid in zip(shipped, ids, strict=True)
                                          for e in o.get("tracking_events") or []])
        if progress:
            progress(len(batch))
    returns = fixtures.get("returns") or []
    _insert(conn, Return, [{"id": _text(r["id"]), "order_id": _text(r["order"]), "status": _text(r["status"]),
                            "reason": _text(r.get("reason")), "refund_amount": _money(r.get("refund_amount") or 0),
                            "created_at": _dt(r.get("created_at") or "2000-01-01")} for r in returns])
    _insert(conn, ReturnItem, [{"return_id": _text(r["id"]), "sku": _text(i["sku"]), "qty": _int(i["qty"])}
                               for r in returns for i in r["items"]])


def _customer(c: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": _text(c["id"]), "name": _text(c["name"]), "email": _text(c["email"]).lower(),
            "zip": _text(c.get("zip")), "phone": _text(c.get("phone")), "address": _text(c.get("address"))}


def _product(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"sku": _text(p["sku"]), "product": _text(p.get("product")) or _text(p["sku"]), "name": _text(p["name"]),
            "attributes": {str(k): v for k, v in dict(p.get("attributes") or {}).items()},
            "price": _money(p["price"]), "category": _text(p["category"]), "stock": _int(p.get("stock") or 0),
            "final_sale": _bool(p.get("final_sale", False))}


def _order(o: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": _text(o["id"]), "customer_id": _text(o["customer"]), "placed_at": _dt(o["placed_at"]),
            "status": _text(o["status"]), "payment_method": _text(o.get("payment_method")),
            "shipping_zip": _text(o.get("shipping_zip")), "note": _text(o.get("note"))}


def _item(o: Mapping[str, Any], i: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": _text(o["id"]), "sku": _text(i["sku"]), "name": _text(i["name"]), "qty": _int(i["qty"]),
            "price": _money(i["price"]), "category": _text(i.get("category")) or "other",
            "final_sale": _bool(i.get("final_sale", False))}


def _payment(o: Mapping[str, Any]) -> dict[str, Any] | None:
    """The order's payment: captured once it is being fulfilled, only authorised while pending or if cancelled."""
    if not o.get("payment_method"):
        return None
    total = sum((_money(i["price"]) * _int(i["qty"]) for i in o["items"]), Decimal("0"))
    return {"order_id": _text(o["id"]), "method": _text(o["payment_method"]), "amount": total,
            "status": "captured" if o["status"] not in ("pending", "cancelled") else "authorized",
            "at": _dt(o["placed_at"])}


def _shipment(o: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = ("carrier", "tracking_number", "shipped_at", "expected_delivery", "delivered_at", "tracking_events")
    if not any(o.get(k) for k in keys):
        return None
    return {"order_id": _text(o["id"]), "carrier": _text(o.get("carrier")),
            "tracking_number": _text(o.get("tracking_number")), "shipped_at": _date(o.get("shipped_at")),
            "expected_delivery": _date(o.get("expected_delivery")), "delivered_at": _date(o.get("delivered_at"))}
