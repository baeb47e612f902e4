"""``shopdesk import``: JSON, YAML and CSV in the fixture format; every bad row by file and line; all or nothing."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli import main
from app.db import Customer, Order, OrderItem, Product, TrackingEvent
from app.fixtures import FixtureError
from app.importer import import_files
from app.seed import demo_fixtures, seed_database
from app.store import ShopStore

NOW = datetime(2026, 3, 15, 10, 0)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def counts(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                for t in (Customer, Product, Order, OrderItem, TrackingEvent)}


def errors_of(engine, paths: list[Path]) -> list[str]:
    with pytest.raises(FixtureError) as exc:
        import_files(engine, paths)
    assert set(counts(engine).values()) == {0}, "a failed import wrote rows"
    return exc.value.errors


CUSTOMERS_CSV = """
id,name,email,zip,phone,address
C900,Ada Park,ada@example.com,02118,+1 617 555 0100,"1 Main St, Boston, MA 02118"
C901,Ben Okafor,ben@example.com,10027,,
"""
PRODUCTS_CSV = """
sku,product,name,price,category,stock,final_sale,attributes
SHOE-TR-42,SHOE-TR,Trail runner,89.00,shoes,4,no,colour=Slate; size=42
MUG-1,,Camp mug,12,home,,yes,"{""colour"": ""Cream""}"
"""
ORDERS_CSV = """
id,customer,placed_at,status,shipped_at,expected_delivery,carrier,tracking_number,payment_method
SD-20001,C900,2026-03-01T09:30:00Z,in_transit,2026-03-02,2026-03-17,UPS,1Z999AA10123456784,visa-4242
SD-20002,C901,2026-03-14,pending,,,,,
"""
ITEMS_CSV = """
order,sku,name,qty,price,category,final_sale
SD-20001,SHOE-TR-42,Trail runner,1,89.00,shoes,false
SD-20002,MUG-1,Camp mug,2,12.00,home,
SD-20001,MUG-1,Camp mug,1,12.00,home,
"""
EVENTS_CSV = """
order,at,location,description
SD-20001,2026-03-03T09:00:00Z,"Reno, NV",Departed facility
SD-20001,2026-03-02T17:00:00Z,"Reno, NV",Picked up
"""


def csv_files(tmp_path: Path, **override: str) -> list[Path]:
    files = {"customers.csv": CUSTOMERS_CSV, "products.csv": PRODUCTS_CSV, "orders.csv": ORDERS_CSV,
             "order_items.csv": ITEMS_CSV, "tracking_events.csv": EVENTS_CSV, **override}
    return [write(tmp_path, name, text) for name, text in files.items()]


# ---- CSV ----------------------------------------------------------------------------------------------------
def test_csv_files_import_into_orders_with_items_shipments_and_events(db_engine, tmp_path):
    result = import_files(db_engine, csv_files(tmp_path))
    assert result == {"customers": 2, "products": 2, "orders": 2, "returns": 0}
    store = ShopStore(db_engine)
    order = store.get_order("SD-20001")
    assert [(i.name, i.qty, i.price) for i in order.items] == [("Trail runner", 1, Decimal("89.00")),
                                                               ("Camp mug", 1, Decimal("12.00"))]
    assert (order.carrier, order.tracking_number, order.shipped_at) == ("UPS", "1Z999AA10123456784", date(2026, 3, 2))
    assert [e.description for e in order.events] == ["Picked up", "Departed facility"]
    assert order.placed_at == datetime(2026, 3, 1, 9, 30) and order.payments[0].amount == Decimal("101.00")
    assert store.customer_for_order("SD-20001", zip_code="02118") == "C900"  # the leading zero survived
    with Session(db_engine) as s:
        mug = s.get(Product, "MUG-1")
        assert (mug.attributes, mug.final_sale, mug.product, mug.stock) == ({"colour": "Cream"}, True, "MUG-1", 0)
        assert s.get(Product, "SHOE-TR-42").attributes == {"colour": "Slate", "size": "42"}


def test_every_bad_csv_row_is_reported_by_file_and_line_and_nothing_is_imported(db_engine, tmp_path):
    errors = errors_of(db_engine, csv_files(
        tmp_path,
        **{"customers.csv": CUSTOMERS_CSV + "C902,Cy,not-an-email,,,\n",
           "orders.csv": ORDERS_CSV + "SD-20003,C999,2026-03-14,teleported,,,,,\nX-1,C900,yesterday,pending,,,,,\n",
           "order_items.csv": ITEMS_CSV + "SD-20003,MUG-1,Camp mug,zero,12.00,home,\n"
                              "SD-29999,MUG-1,Camp mug,1,1,home,\nX-1,MUG-1,Camp mug,1,-5,home,\n"}))
    assert errors == [
        "customers.csv line 4: email: 'not-an-email' is not an email address",
        "order_items.csv line 5: qty: 'zero' is not a whole number",
        "order_items.csv line 6: order 'SD-29999' is not in the imported orders",
        "order_items.csv line 7: price: '-5' is out of range (0 to 99999999.99)",
        "orders.csv line 4: status 'teleported' not in ('pending', 'processing', 'shipped', 'in_transit', 'delayed', "
        "'delivered', 'cancelled', 'returned')",
        "orders.csv line 4: customer 'C999' is neither imported nor in the database",
        "orders.csv line 5: placed_at: 'yesterday' is not an ISO date or date-time (e.g. 2026-03-05 or "
        "2026-03-05T14:32:00Z)",
        "orders.csv line 5: 'X-1' is not an order number of this shop (SD- and 5 or 6 digits, e.g. SD-10492; "
        "the order_prefix setting)",
    ]


def test_an_order_without_item_rows_is_an_error_at_its_line(db_engine, tmp_path):
    errors = errors_of(db_engine, csv_files(tmp_path, **{"order_items.csv": ITEMS_CSV.replace(
        "SD-20002,MUG-1,Camp mug,2,12.00,home,\n", "")}))
    assert errors == ["orders.csv line 3: items must be a non-empty list"]


@pytest.mark.parametrize(("name", "text", "error"), [
    ("customers.csv", "id,name,email,colour\nC1,A,a@example.com,red\n",
     "customers.csv line 1: columns of customers.csv are id, name, email, zip, phone, address (unknown: ['colour']"),
    ("export.csv", "foo,bar\n1,2\n", "export.csv line 1: can't tell which table this is"),
    ("shop.txt", "hello", "shop.txt: unsupported file type '.txt'"),
    ("customers.csv", "id,name,email\nC1,A\n", "customers.csv line 2: 2 cells, the header has 3"),
])
def test_files_that_cannot_be_read_say_why(db_engine, tmp_path, name, text, error):
    errors = errors_of(db_engine, [write(tmp_path, name, text)])
    assert errors[0].startswith(error), errors


def test_a_csv_named_otherwise_is_recognised_by_its_header(db_engine, tmp_path):
    path = write(tmp_path, "export-2026-03.csv", CUSTOMERS_CSV)
    assert import_files(db_engine, [path])["customers"] == 2


def test_duplicates_across_files_and_rows_already_in_the_database(db_engine, tmp_path):
    import_files(db_engine, [write(tmp_path, "customers.csv", CUSTOMERS_CSV)])
    more = write(tmp_path, "more.json", json.dumps({"customers": [
        {"id": "C903", "name": "Cy", "email": "cy@example.com"},
        {"id": "C903", "name": "Cy again", "email": "cy@example.com"},
        {"id": "C900", "name": "Ada", "email": "ada@example.com"}]}, indent=2))
    with pytest.raises(FixtureError) as exc:
        import_files(db_engine, [more])
    assert exc.value.errors == ["more.json line 8: C903 appears twice (first at more.json line 3)",
                                "more.json line 13: C900 is already in the database (imports only add rows)"]
    assert counts(db_engine)["customers"] == 2


# ---- JSON and YAML ------------------------------------------------------------------------------------------
def test_json_errors_name_the_line_where_the_row_starts(db_engine, tmp_path):
    shop = {"customers": [{"id": "C900", "name": "Ada", "email": "ada@example.com"}],
            "orders": [{"id": "SD-20001", "customer": "C900", "placed_at": "2026-03-01", "status": "pending",
                        "items": [{"sku": "A", "name": "a", "qty": 1, "price": 1}]},
                       {"id": "SD-20002", "customer": "C900", "placed_at": "2026-03-01", "status": "pending",
                        "colour": "red",
                        "items": [{"sku": "A", "name": "a", "qty": 1, "price": 1},
                                  {"sku": "B", "qty": 1, "price": 1}]}]}
    text = json.dumps(shop, indent=2)
    path = write(tmp_path, "shop.json", text)
    second_order_line = text.splitlines().index('    {', text.splitlines().index('  "orders": [') + 2) + 1
    errors = errors_of(db_engine, [path])
    assert errors[0].startswith(f"shop.json line {second_order_line}: unknown keys ['colour']")
    assert errors[1] == f"shop.json line {second_order_line} (items[1]): missing ['name']"


def test_invalid_json_names_its_line(db_engine, tmp_path):
    errors = errors_of(db_engine, [write(tmp_path, "shop.json", '{"customers": [\n  {"id": "C1",}\n]}')])
    assert errors[0].startswith("shop.json line 2: not valid JSON")


def test_yaml_rows_are_reported_by_line(db_engine, tmp_path):
    path = write(tmp_path, "shop.yaml", """
customers:
  - {id: C900, name: Ada Park, email: ada@example.com, zip: "94110"}
  - {id: C901, name: Ben, email: ben.example.com}
""")
    assert errors_of(db_engine, [path]) == ["shop.yaml line 3: email: 'ben.example.com' is not an email address"]


def test_the_demo_shop_exported_as_json_imports_to_the_same_orders_as_seeding(db_engine, tmp_path):
    shop = demo_fixtures(seed=5, customers=15, orders=50, now=NOW)
    path = write(tmp_path, "demo.json", json.dumps(shop))
    assert import_files(db_engine, [path]) == {t: len(shop[t]) for t in ("customers", "products", "orders", "returns")}
    yaml_path = write(tmp_path, "demo.yaml", yaml.safe_dump({"customers": shop["customers"][:3]}))
    with pytest.raises(FixtureError, match="already in the database"):
        import_files(db_engine, [yaml_path])
    from app.db import make_engine, migrate

    seeded = make_engine(f"sqlite:///{tmp_path / 'seeded.db'}")
    migrate(seeded)
    seed_database(seeded, seed=5, customers=15, orders=50, now=NOW)
    imported, expected = ShopStore(db_engine), ShopStore(seeded)
    assert all(imported.get_order(o["id"]) == expected.get_order(o["id"]) for o in shop["orders"])
    seeded.dispose()


def test_one_bad_order_among_many_imports_nothing(db_engine, tmp_path):
    shop = demo_fixtures(seed=5, customers=15, orders=50, now=NOW)
    shop["orders"][37]["items"][0]["qty"] = 0
    errors = errors_of(db_engine, [write(tmp_path, "demo.json", json.dumps(shop, indent=1))])
    assert len(errors) == 1 and "(items[0]): qty: 0 must be at least 1" in errors[0]


# ---- command line ---------------------------------------------------------------------------------------------
def test_cli_import_exit_codes_and_messages(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SHOPDESK_DATABASE_URL", raising=False)
    data = str(tmp_path / "data")
    bad = write(tmp_path, "customers.csv", "id,name,email\nC1,Ada,nope\n")
    assert main(["--data-dir", data, "import", str(bad)]) == 2
    assert "customers.csv line 2: email: 'nope' is not an email address" in capsys.readouterr().err
    good = tmp_path / "good"
    good.mkdir()
    assert main(["--data-dir", data, "import", *map(str, csv_files(good))]) == 0
    assert "import: {'customers': 2, 'products': 2, 'orders': 2, 'returns': 0}" in capsys.readouterr().out
