"""The rules of the transcript format, checked on located YAML (``evals.located``).

Every problem is a ``FILE:LINE: where: what`` message; ``Problems`` collects them so a file reports
all of its problems at once. ``evals.transcript`` builds the typed values once nothing is wrong.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from app.fixtures import TABLES, row_errors
from evals.located import LocatedDict, line_of
from intents.labels import ROUTES

TOP_KEYS = {"id", "turns"}, {"description", "tags", "now", "seed", "fixtures", "final_state"}
TURN_KEYS = {"user"}, {"expect"}
EXPECT_KEYS = {"intent", "route", "reply_contains", "reply_contains_any", "reply_not_contains", "reply_matches",
               "sources", "actions", "handoff", "verified"}
FINAL_KEYS = {"returns", "orders", "handoff_tickets"}
# fields of the final-state rows the runner reads back (app.store.ShopStore.snapshot)
FINAL_ROW_KEYS = {"returns": {"id", "order", "status", "items", "refund_amount", "kind"},
                  "orders": {"id", "status"},
                  "handoff_tickets": {"id", "status", "customer", "session_id"}}
ACTION_NAMES = ("create_return", "create_exchange", "cancel_order", "open_handoff_ticket")
EXPECTABLE_ROUTES = (*ROUTES, "clarify", "invalid_input")
SEEDS = ("demo", "empty")
EVAL_DEMO_SIZE = {"customers": 60, "orders": 200}  # the demo shop a `seed: demo` transcript starts from
_TEXT_KEYS = ("intent", "route", "reply_contains", "reply_contains_any", "reply_not_contains", "reply_matches",
              "sources")


class Problems:
    """Collects ``FILE:LINE: where: what`` messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, where: str, what: str) -> None:
        self.items.append(f"{self.path}:{line}: {where}: {what}" if line else f"{self.path}: {where}: {what}")

    def keys(self, where: str, data: Any, required: set[str], optional: set[str], line: int) -> bool:
        """False (and a problem) when ``data`` is not a mapping; missing and unknown keys are problems."""
        if not isinstance(data, dict):
            self.add(line, where, f"expected a mapping, got {type(data).__name__} {data!r:.60}")
            return False
        for key in sorted(required - data.keys()):
            self.add(line_of(data) or line, where, f"missing key {key!r}")
        for key in sorted(data.keys() - required - optional, key=str):
            self.add(line_of(data, key), where, f"unknown key {key!r}; allowed: {sorted(required | optional)}")
        return True


def _texts(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_expect(p: Problems, where: str, expect: LocatedDict | dict) -> None:
    for key in _TEXT_KEYS:
        if key not in expect:
            continue
        bad = [v for v in _texts(expect[key]) if not isinstance(v, str | int | float) or isinstance(v, bool)]
        if bad:
            p.add(line_of(expect, key), f"{where}.{key}", f"expected text, got {bad!r} (quote values that contain ':')")
    for key in ("handoff", "verified"):
        if key in expect and not isinstance(expect[key], bool):
            p.add(line_of(expect, key), f"{where}.{key}", f"expected true or false, got {expect[key]!r}")
    if "route" in expect and expect["route"] not in EXPECTABLE_ROUTES:
        p.add(line_of(expect, "route"), f"{where}.route",
              f"{expect['route']!r} is not a route; one of {EXPECTABLE_ROUTES}")
    if "intent" in expect and str(expect["intent"]).split(".", 1)[0] not in EXPECTABLE_ROUTES:
        p.add(line_of(expect, "intent"), f"{where}.intent",
              f"{expect['intent']!r} must be a route or <route>.<intent>, route one of {EXPECTABLE_ROUTES}")
    if "actions" in expect:
        actions = expect["actions"]
        if not isinstance(actions, list):
            p.add(line_of(expect, "actions"), f"{where}.actions", "expected a list ([] for no write)")
            return
        for i, action in enumerate(actions):
            at = line_of(actions, i)
            if not isinstance(action, dict) or len(action) != 1:
                p.add(at, f"{where}.actions[{i}]", f"expected {{name: {{arg: value}}}}, got {action!r}")
                continue
            name, args = next(iter(action.items()))
            if name not in ACTION_NAMES:
                p.add(at, f"{where}.actions[{i}]", f"unknown action {name!r}; one of {ACTION_NAMES}")
            if args is not None and not isinstance(args, dict):
                p.add(at, f"{where}.actions[{i}]", f"arguments of {name} must be a mapping, got {args!r}")


@lru_cache(maxsize=1)
def _demo_ids() -> dict[str, frozenset[str]]:
    from app.seed import demo_fixtures

    demo = demo_fixtures(now=datetime(2026, 3, 15), **EVAL_DEMO_SIZE)  # ids do not depend on the date
    return {"customers": frozenset(c["id"] for c in demo["customers"]),
            "orders": frozenset(o["id"] for o in demo["orders"])}


def check_fixtures(p: Problems, where: str, fixtures: Any, seed: str, line: int) -> None:
    if not isinstance(fixtures, dict):
        p.add(line, f"{where} fixtures", f"expected a mapping of tables ({', '.join(TABLES)})")
        return
    for table in sorted(set(fixtures) - set(TABLES), key=str):
        p.add(line_of(fixtures, table), f"{where} fixtures", f"unknown table {table!r}; allowed: {list(TABLES)}")

    def locate(table: str, i: int, sub: tuple[str, int] | None) -> str:
        rows = fixtures.get(table)
        row = rows[i] if isinstance(rows, list) and i < len(rows) else None
        at = line_of(rows, i)
        if sub and isinstance(row, dict) and isinstance(row.get(sub[0]), list):
            at = line_of(row[sub[0]], sub[1]) or at
        suffix = f".{sub[0]}[{sub[1]}]" if sub else ""
        return f"{p.path}:{at}: {where} fixtures.{table}[{i}]{suffix}" if at else f"{p.path}: {where} {table}[{i}]"

    known = {t: v for t, v in fixtures.items() if t in TABLES}
    p.items += [e if e.startswith(p.path) else f"{p.path}:{line}: {where} fixtures: {e}"
                for e in row_errors(known, locate)]
    _check_references(p, where, fixtures, seed)


def _check_references(p: Problems, where: str, fixtures: dict[str, Any], seed: str) -> None:
    """Rows must point at rows that exist: in the fixtures, or in the demo shop for ``seed: demo``."""
    demo = _demo_ids() if seed == "demo" else {"customers": frozenset(), "orders": frozenset()}

    def rows(table: str) -> list[Any]:
        value = fixtures.get(table)
        return value if isinstance(value, list) else []

    customers = {str(c.get("id")) for c in rows("customers") if isinstance(c, dict)} | demo["customers"]
    orders = {str(o.get("id")): o for o in rows("orders") if isinstance(o, dict)}
    for i, o in enumerate(rows("orders")):
        if isinstance(o, dict) and "customer" in o and str(o["customer"]) not in customers:
            p.add(line_of(o, "customer"), f"{where} fixtures.orders[{i}]",
                  f"customer {o['customer']!r} is not in fixtures.customers" + (
                      "" if seed == "demo" else " (seed: empty starts from no customers)"))
    for i, r in enumerate(rows("returns")):
        if not isinstance(r, dict) or "order" not in r:
            continue
        order = orders.get(str(r["order"]))
        if order is None and str(r["order"]) not in demo["orders"]:
            p.add(line_of(r, "order"), f"{where} fixtures.returns[{i}]",
                  f"order {r['order']!r} is not in fixtures.orders")
        elif order is not None and isinstance(r.get("items"), list):
            skus = {str(x.get("sku")) for x in order.get("items") or [] if isinstance(x, dict)}
            for j, item in enumerate(r["items"]):
                if isinstance(item, dict) and "sku" in item and str(item["sku"]) not in skus:
                    p.add(line_of(r["items"], j), f"{where} fixtures.returns[{i}].items[{j}]",
                          f"sku {item['sku']!r} is not an item of order {r['order']} ({sorted(skus)})")


def check_final(p: Problems, where: str, final: Any, line: int) -> None:
    if not p.keys(f"{where} final_state", final, set(), FINAL_KEYS, line):
        return
    for table, rows in final.items():
        if table not in FINAL_KEYS or rows is None:
            continue
        if not isinstance(rows, list):
            p.add(line_of(final, table), f"{where} final_state.{table}", "expected a list of rows ([] = none)")
            continue
        for i, row in enumerate(rows):
            p.keys(f"{where} final_state.{table}[{i}]", row, set(), FINAL_ROW_KEYS[table], line_of(rows, i))
