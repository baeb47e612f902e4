"""``shopdesk import FILE...``: a shop's customers, products and orders from JSON, YAML or CSV.

The rows are the transcript-fixture format (design.md section 5, ``app.fixtures``); CSV spreads an
order over ``orders.csv``, ``order_items.csv`` and ``tracking_events.csv`` (docs/import.md). Every
row is checked before anything is written: its keys and values, duplicates across the files, ids
already in the database, references to customers and orders, and the shop's order-number format.
Each problem is reported with its file and line; when there is any, nothing is imported. Otherwise
all files load in one transaction.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Customer, Order, Product, Return
from app.fixtures import TABLES, FixtureError, load_fixtures, row_errors

CSV_COLUMNS = {
    "customers": ("id", "name", "email", "zip", "phone", "address"),
    "products": ("sku", "product", "name", "price", "category", "stock", "final_sale", "attributes"),
    "orders": ("id", "customer", "placed_at", "status", "shipped_at", "expected_delivery", "delivered_at", "carrier",
               "tracking_number", "payment_method", "shipping_zip", "note"),
    "order_items": ("order", "sku", "name", "qty", "price", "category", "final_sale"),
    "tracking_events": ("order", "at", "location", "description"),
}
_CSV_REQUIRED = {"customers": {"id", "name", "email"}, "products": {"sku", "name", "price", "category"},
                 "orders": {"id", "customer", "placed_at", "status"},
                 "order_items": {"order", "sku", "name", "qty", "price"},
                 "tracking_events": {"order", "at", "description"}}
_CHILDREN = {"order_items": "items", "tracking_events": "tracking_events"}
_DB_KEYS = {"customers": Customer.id, "products": Product.sku, "orders": Order.id, "returns": Return.id}


@dataclass
class _Rows:
    """Everything read so far: fixture rows per table, where each came from, and problems found."""

    tables: dict[str, list[dict[str, Any]]]
    where: dict[tuple, str]
    errors: list[str]
    children: list[tuple[str, dict[str, Any], str]]  # (CSV table, row, location) waiting for their order


class _Lines:
    """Line numbers of increasing offsets, counting each newline once (big files stay linear)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


# ---- readers ----------------------------------------------------------------------------------------
def _read_json(path: Path, text: str, rows: _Rows) -> None:
    """A JSON object of tables, each a list of rows; tracks the line where each row starts."""
    decoder = json.JSONDecoder()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        rows.errors.append(f"{path.name} line {exc.lineno}: not valid JSON: {exc.msg}")
        return
    if not isinstance(data, dict):
        rows.errors.append(f"{path.name} line 1: expected an object of tables ({', '.join(TABLES)})")
        return
    # walk the top level again to find each row's line (json.loads keeps no positions)
    lines_of = _Lines(text)
    i = text.index("{") + 1
    while True:
        i = _skip(text, i, ",")
        if text[i] == "}":
            break
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, i, ":")
        if text[i] != "[":
            _, i = decoder.raw_decode(text, i)
            continue
        i += 1
        lines = []
        while True:
            i = _skip(text, i, ",")
            if text[i] == "]":
                i += 1
                break
            lines.append(lines_of.at(i))
            _, i = decoder.raw_decode(text, i)
        _add_table(path, key, data[key], lines, rows)


def _skip(text: str, i: int, separator: str) -> int:
    while text[i].isspace() or text[i] == separator:
        i += 1
    return i


def _read_yaml(path: Path, text: str, rows: _Rows) -> None:
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        rows.errors.append(f"{path.name} line {mark.line + 1 if mark else 1}: not valid YAML: {exc}")
        return
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        rows.errors.append(f"{path.name} line 1: expected a mapping of tables ({', '.join(TABLES)})")
        return
    for key_node, value_node in node.value:
        lines = [n.start_mark.line + 1 for n in value_node.value] if isinstance(value_node, yaml.SequenceNode) else []
        _add_table(path, str(key_node.value), data.get(key_node.value), lines, rows)


def _add_table(path: Path, table: str, values: Any, lines: list[int], rows: _Rows) -> None:
    if table not in TABLES:
        rows.errors.append(f"{path.name}: unknown table {table!r} (allowed: {', '.join(TABLES)})")
        return
    if not isinstance(values, list):
        rows.errors.append(f"{path.name}: {table} must be a list of rows")
        return
    for value, line in zip(values, lines, strict=True):
        rows.where[(table, len(rows.tables[table]))] = f"{path.name} line {line}"
        rows.tables[table].append(value)


def _csv_table(path: Path, header: list[str]) -> str | None:
    if path.stem.lower() in CSV_COLUMNS:
        return path.stem.lower()
    fits = [t for t, required in _CSV_REQUIRED.items() if required <= set(header) <= set(CSV_COLUMNS[t])]
    return fits[0] if len(fits) == 1 else None


def _attributes(value: str) -> Any:
    """``colour=Slate; size=9`` or a JSON object."""
    if value.startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # validation reports it
    pairs = [p.split("=", 1) for p in value.split(";") if p.strip()]
    return {k.strip(): v.strip() for k, v in pairs} if all(len(p) == 2 for p in pairs) else value


def _read_csv(path: Path, text: str, rows: _Rows) -> None:
    reader = csv.reader(text.splitlines(keepends=True))
    header = [h.strip().lower() for h in next(reader, [])]
    table = _csv_table(path, header)
    if table is None:
        rows.errors.append(f"{path.name} line 1: can't tell which table this is; name the file "
                           f"{', '.join(f'{t}.csv' for t in CSV_COLUMNS)} (columns: docs/import.md)")
        return
    unknown = [h for h in header if h not in CSV_COLUMNS[table]]
    missing = sorted(_CSV_REQUIRED[table] - set(header))
    if unknown or missing or len(set(header)) != len(header):
        rows.errors.append(f"{path.name} line 1: columns of {table}.csv are {', '.join(CSV_COLUMNS[table])} "
                           f"(unknown: {unknown or 'none'}, missing: {missing or 'none'}, each once)")
        return
    start = reader.line_num + 1
    for record in reader:
        where, start = f"{path.name} line {start}", reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            rows.errors.append(f"{where}: {len(record)} cells, the header has {len(header)}")
            continue
        row = {k: v.strip() for k, v in zip(header, record, strict=True) if v.strip()}
        if table == "products" and "attributes" in row:
            row["attributes"] = _attributes(row["attributes"])
        if table in _CHILDREN:
            rows.children.append((table, row, where))
        else:
            rows.where[(table, len(rows.tables[table]))] = where
            if table == "orders":
                row.setdefault("items", [])
            rows.tables[table].append(row)


def _attach_children(rows: _Rows) -> None:
    """Put order_items.csv and tracking_events.csv rows into their orders (fixture form)."""
    by_id = {str(o.get("id")): i for i, o in enumerate(rows.tables["orders"]) if isinstance(o, dict)}
    for table, row, where in rows.children:
        oid = row.pop("order", "")
        if oid not in by_id:
            rows.errors.append(f"{where}: order {oid!r} is not in the imported orders")
            continue
        i = by_id[oid]
        key = _CHILDREN[table]
        orders_row = rows.tables["orders"][i]
        bucket = orders_row.setdefault(key, [])
        rows.where[("orders", i, (key, len(bucket)))] = where
        bucket.append(row)


# ---- checks against each other and the database --------------------------------------------------------
def _existing(engine: Engine, table: str, keys: Iterable[str]) -> set[str]:
    column = _DB_KEYS[table]
    keys = sorted(set(keys))
    found: set[str] = set()
    with Session(engine) as s:
        for start in range(0, len(keys), 500):
            found.update(s.scalars(select(column).where(column.in_(keys[start:start + 500]))))
    return found


def _reference_errors(engine: Engine, t: dict[str, list[Any]], prefix: str, locate: Callable) -> list[str]:
    errors = []
    order_id = re.compile(re.escape(prefix) + r"\d{5,6}")
    ids = {table: [str(r.get("sku" if table == "products" else "id", "")) for r in t[table] if isinstance(r, dict)]
           for table in TABLES}
    for table in TABLES:
        taken = _existing(engine, table, ids[table])
        errors += [f"{locate(table, i, None)}: {r.get('sku' if table == 'products' else 'id')} is already in the "
                   "database (imports only add rows)" for i, r in enumerate(t[table])
                   if isinstance(r, dict) and str(r.get("sku" if table == "products" else "id")) in taken]
    customers = set(ids["customers"]) | _existing(engine, "customers", [str(o.get("customer")) for o in t["orders"]
                                                                          if isinstance(o, dict)])
    orders = set(ids["orders"]) | _existing(engine, "orders", [str(r.get("order")) for r in t["returns"]
                                                              if isinstance(r, dict)])
    for i, o in enumerate(t["orders"]):
        if not isinstance(o, dict):
            continue
        if "customer" in o and str(o["customer"]) not in customers:
            errors.append(f"{locate('orders', i, None)}: customer {o['customer']!r} is neither imported nor in the "
                          "database")
        if "id" in o and not order_id.fullmatch(str(o["id"])):
            errors.append(f"{locate('orders', i, None)}: {o['id']!r} is not an order number of this shop "
                          f"({prefix} and 5 or 6 digits, e.g. {prefix}10492; the order_prefix setting)")
    errors += [f"{locate('returns', i, None)}: order {r['order']!r} is neither imported nor in the database"
               for i, r in enumerate(t["returns"]) if isinstance(r, dict) and "order" in r
               and str(r["order"]) not in orders]
    return errors


def _by_file_and_line(error: str) -> tuple[str, int]:
    """Sort key; a stable sort keeps each row's own problems before those of its items."""
    m = re.match(r"(.+?) line (\d+)", error)
    return (m.group(1), int(m.group(2))) if m else (error, 0)


# ---- entry point ----------------------------------------------------------------------------------------
def read_files(paths: list[Path]) -> tuple[dict[str, list[dict[str, Any]]], Callable, list[str]]:
    """Rows of all files in fixture form, a locator naming each row's file and line, and read errors."""
    rows = _Rows({t: [] for t in TABLES}, {}, [], [])
    for path in paths:
        if not path.is_file():
            rows.errors.append(f"{path}: no such file")
            continue
        text = path.read_text(encoding="utf-8-sig")
        suffix = path.suffix.lower()
        reader = {".json": _read_json, ".yaml": _read_yaml, ".yml": _read_yaml, ".csv": _read_csv}.get(suffix)
        if reader is None:
            rows.errors.append(f"{path.name}: unsupported file type {suffix!r} (use .json, .yaml or .csv)")
            continue
        reader(path, text, rows)
    _attach_children(rows)

    def locate(table: str, i: int, sub: tuple[str, int] | None = None) -> str:
        if sub and (table, i, sub) in rows.where:
            return rows.where[(table, i, sub)]
        base = rows.where.get((table, i), f"{table}[{i}]")
        return base + (f" ({sub[0]}[{sub[1]}])" if sub else "")

    return rows.tables, locate, rows.errors


def import_files(engine: Engine, paths: list[Path], order_prefix: str = "SD-",
                 progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Check every row of every file, then load them all in one transaction; rows written per table."""
    tables, locate, errors = read_files(paths)
    errors += row_errors(tables, locate)
    errors += _reference_errors(engine, tables, order_prefix, locate)
    if errors:
        raise FixtureError(sorted(dict.fromkeys(errors), key=_by_file_and_line))
    if not any(tables.values()):
        raise FixtureError("no rows to import in " + ", ".join(p.name for p in paths))
    try:
        return load_fixtures(engine, tables, source=", ".join(p.name for p in paths), progress=progress)
    except IntegrityError as exc:  # another writer added the same ids since the checks
        raise FixtureError(f"the database refused the rows, nothing was imported: {exc.orig}") from exc
