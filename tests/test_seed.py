"""The demo-shop generator: determinism, consistency of statuses and dates, the documented demo entries."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import seed as seed_module
from app.db import (
    Customer,
    Order,
    OrderItem,
    Payment,
    Product,
    Return,
    ReturnItem,
    SessionRow,
    Shipment,
    TrackingEvent,
    make_engine,
    migrate,
)
from app.fixtures import ORDER_STATUSES, validate
from app.seed import DEFAULT_NOW, catalogue, demo_fixtures, seed_database
from app.store import ShopStore

CATEGORIES = {"shoes", "apparel", "outerwear", "bags", "accessories", "electronics", "earbuds", "home", "beauty",
              "underwear", "swimwear", "gift_card"}
TRACKING = {"UPS": re.compile(r"1Z[0-9A-Z]{16}"), "USPS": re.compile(r"\d{22}"), "FedEx": re.compile(r"\d{12}")}
SHIPMENT_KEYS = {"shipped_at", "expected_delivery", "delivered_at", "carrier", "tracking_number", "tracking_events"}
NOWS = [
    DEFAULT_NOW,  # a Sunday morning
    datetime(2026, 7, 1, 0, 20),  # a Wednesday just after midnight
    datetime(2025, 12, 29, 23, 50),  # a Monday night, orders spanning the new year
    datetime(2026, 3, 21, 16, 45, 12, 345678),  # a Saturday afternoon, seconds and microseconds
]


@pytest.fixture(scope="module")
def shop() -> dict:
    return demo_fixtures()


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    migrate(engine)
    yield engine
    engine.dispose()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _day(value: str) -> date:
    return date.fromisoformat(value)


# ---- determinism --------------------------------------------------------------------------------
def test_same_arguments_same_shop(shop):
    assert demo_fixtures() == shop
    assert demo_fixtures(seed=7, customers=120, orders=400, now=DEFAULT_NOW) == shop
    assert json.loads(json.dumps(shop)) == shop  # plain JSON values: usable as transcript fixtures


def test_other_seed_other_shop_same_demo_entries(shop):
    other = demo_fixtures(seed=8)
    assert other != shop
    assert other["orders"][8:] != shop["orders"][8:]
    assert other["customers"][:2] == shop["customers"][:2]
    assert other["orders"][:8] == shop["orders"][:8]
    assert other["returns"][0] == shop["returns"][0]
    assert other["products"] == shop["products"]


def test_dates_follow_now():
    later = demo_fixtures(now=DEFAULT_NOW + timedelta(days=30))
    assert later["orders"][0]["delivered_at"] == (DEFAULT_NOW + timedelta(days=20)).date().isoformat()
    aware = datetime(2026, 3, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC
    assert demo_fixtures(now=aware) == demo_fixtures(now=datetime(2026, 3, 15, 10, 0, tzinfo=UTC))
    assert demo_fixtures(now=aware) == demo_fixtures()


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 2 customers"):
        demo_fixtures(customers=1)
    with pytest.raises(ValueError, match="per customer"):
        demo_fixtures(customers=10, orders=100)
    small = demo_fixtures(customers=2, orders=8)
    assert [o["id"] for o in small["orders"]] == [f"SD-1000{i}" for i in range(1, 9)]


# ---- shape ----------------------------------------------------------------------------------------
def test_catalogue():
    products = catalogue()
    assert 55 <= len(products) <= 75
    assert {p["category"] for p in products} == CATEGORIES
    assert len({p["sku"] for p in products}) == len(products)
    assert any(p["final_sale"] for p in products) and any(p["stock"] == 0 for p in products)
    for p in products:
        assert isinstance(p["price"], float) and round(p["price"], 2) == p["price"] and p["price"] > 0
    families: dict[str, list[dict]] = {}
    for p in products:
        families.setdefault(p["product"], []).append(p)
    assert sum(len(v) > 1 for v in families.values()) >= 15  # most families have size/colour variants
    for variants in families.values():
        attrs = [json.dumps(v["attributes"], sort_keys=True) for v in variants]
        assert len(set(attrs)) == len(attrs)
        assert len({(v["category"], v["final_sale"]) for v in variants}) == 1
    names = {p["name"] for p in products}
    assert {"Trail Runner GTX (Slate, 9)", "Merino Crew Sweater (Oatmeal, M)",
            "Noise-Cancelling Headphones (Black)"} <= names


def test_ids_and_references(shop):
    validate(shop)
    customers = {c["id"]: c for c in shop["customers"]}
    products = {p["sku"]: p for p in shop["products"]}
    assert len(shop["customers"]) == 120 and len(customers) == 120
    assert [c["id"] for c in shop["customers"]] == [f"C{i:04d}" for i in range(1, 121)]
    assert [o["id"] for o in shop["orders"]] == [f"SD-{i}" for i in range(10001, 10401)]
    assert len({r["id"] for r in shop["returns"]}) == len(shop["returns"])
    assert all(re.fullmatch(r"RMA-\d{4}", r["id"]) for r in shop["returns"])
    tracking = [o["tracking_number"] for o in shop["orders"] if o.get("tracking_number")]
    assert len(set(tracking)) == len(tracking)
    emails = [c["email"] for c in shop["customers"]]
    assert len(set(emails)) == len(emails)
    assert len({c["name"] for c in shop["customers"]}) == 120
    assert len({c["phone"] for c in shop["customers"]}) == 120
    for c in shop["customers"]:
        assert re.fullmatch(r"[a-z0-9._-]+@example\.(com|org)", c["email"]), c
        assert re.fullmatch(r"\d{5}", c["zip"]), c
        assert re.fullmatch(r"\+1 \d{3} 555 01\d{2}", c["phone"]), c
        assert c["address"].endswith(c["zip"]) and re.match(r"\d+ ", c["address"]), c
    per_customer = Counter(o["customer"] for o in shop["orders"])
    assert set(per_customer) == set(customers)
    assert all(1 <= n <= 8 for n in per_customer.values())
    for o in shop["orders"]:
        assert o["shipping_zip"] == customers[o["customer"]]["zip"]
        assert o["payment_method"]
        assert 1 <= len(o["items"]) <= 3
        assert len({i["sku"] for i in o["items"]}) == len(o["items"])
        for item in o["items"]:
            p = products[item["sku"]]
            assert (item["name"], item["price"], item["category"], item["final_sale"]) == (
                p["name"], p["price"], p["category"], p["final_sale"])
            assert item["qty"] >= 1


def test_every_status_well_represented(shop):
    counts = Counter(o["status"] for o in shop["orders"])
    assert set(counts) == set(ORDER_STATUSES)
    assert min(counts.values()) >= 20, counts
    assert Counter(o["carrier"] for o in shop["orders"] if "carrier" in o).keys() == {"UPS", "USPS", "FedEx"}


# ---- consistency of statuses and dates ---------------------------------------------------------------
def _check_consistency(shop: dict, now: datetime) -> None:
    now = now.replace(second=0, microsecond=0)
    today = now.date()
    customers = {c["id"]: c for c in shop["customers"]}
    returns = {}
    for r in shop["returns"]:
        assert r["order"] not in returns, f"two returns for {r['order']}"
        returns[r["order"]] = r
    for o in shop["orders"]:
        where = o["id"]
        status, placed = o["status"], _dt(o["placed_at"])
        assert now - timedelta(days=120) <= placed <= now, where
        if status in ("pending", "processing", "cancelled"):
            assert not SHIPMENT_KEYS & o.keys(), where
            if status != "cancelled":
                assert placed >= now - timedelta(days=3), where
            assert where not in returns
            continue
        carrier, events = o["carrier"], o["tracking_events"]
        assert TRACKING[carrier].fullmatch(o["tracking_number"]), where
        shipped = _day(o["shipped_at"])
        expected = _day(o["expected_delivery"])
        assert placed.date() <= shipped <= today and shipped < expected, where
        assert len(events) >= 2, where
        ats = [_dt(e["at"]) for e in events]
        assert ats == sorted(ats) and ats[-1] <= now and ats[0] >= placed, where
        assert events[0]["location"] == "Reno, NV" and events[1]["location"] == "Reno, NV", where
        city = customers[o["customer"]]["address"].rsplit(", ", 2)
        destination = f"{city[-2].split(', ')[-1]}, {city[-1][:2]}"
        descriptions = [e["description"] for e in events]
        if status in ("shipped", "in_transit", "delayed"):
            assert "delivered_at" not in o and "Delivered" not in descriptions, where
        if status in ("shipped", "in_transit"):
            assert expected > today, where
            assert not any(d.startswith("Delayed") for d in descriptions), where
        if status == "shipped":
            assert {e["location"] for e in events} == {"Reno, NV"} and len(events) == 2, where
        if status == "in_transit":
            assert len(events) >= 3, where  # at least one scan after the pickup
        if status == "delayed":
            assert expected < today, where
            assert descriptions[-1].startswith("Delayed: "), where
        if status in ("delivered", "returned"):
            delivered = _day(o["delivered_at"])
            assert shipped < delivered <= today, where
            assert descriptions[-1] == "Delivered" and ats[-1].date() == delivered, where
            assert events[-1]["location"] == destination, where
        if status == "returned":
            r = returns[where]
            assert r["status"] == "refunded" and r["items"], where
            created = _dt(r["created_at"])
            assert _day(o["delivered_at"]) < created.date() and created <= now - timedelta(days=2), where
            assert created.date() <= _day(o["delivered_at"]) + timedelta(days=15), where  # inside every window
            lines = {i["sku"]: i for i in o["items"]}
            for ri in r["items"]:
                line = lines[ri["sku"]]
                assert 1 <= ri["qty"] <= line["qty"] and not line["final_sale"], where
                assert line["category"] not in ("gift_card", "underwear", "swimwear", "beauty", "earbuds"), where
            refund = sum(Decimal(str(lines[ri["sku"]]["price"])) * ri["qty"] for ri in r["items"])
            assert Decimal(str(r["refund_amount"])) == refund, where
        else:
            assert where not in returns, where


@pytest.mark.parametrize("now", NOWS, ids=lambda d: d.strftime("%a-%Y%m%d-%H%M"))
@pytest.mark.parametrize("seed", [7, 1, 2024])
def test_status_and_dates_consistent(seed, now):
    _check_consistency(demo_fixtures(seed=seed, now=now), now)


def test_generated_orders_numbered_by_date(shop):
    placed = [o["placed_at"] for o in shop["orders"][8:]]
    assert placed == sorted(placed)
    assert shop["orders"][8]["id"] == "SD-10009" and shop["customers"][2]["id"] == "C0003"
    assert shop["returns"][1]["id"] == "RMA-1002"


# ---- the documented demo entries ---------------------------------------------------------------------
@pytest.mark.parametrize("now", NOWS, ids=lambda d: d.strftime("%a-%Y%m%d-%H%M"))
def test_fixed_demo_entries(now):
    shop = demo_fixtures(seed=99, now=now)
    now = now.replace(second=0, microsecond=0)
    today = now.date()
    ada, ben = shop["customers"][:2]
    assert ada == {"id": "C0001", "name": "Ada Park", "email": "ada.park@example.com", "zip": "94110",
                   "phone": "+1 415 555 0101", "address": "1250 Valencia St, San Francisco, CA 94110"}
    assert (ben["id"], ben["name"], ben["email"], ben["zip"]) == ("C0002", "Ben Okafor", "ben.okafor@example.com",
                                                                  "10027")
    orders = {o["id"]: o for o in shop["orders"][:8]}
    assert {oid: (o["customer"], o["status"]) for oid, o in orders.items()} == {
        "SD-10001": ("C0001", "delivered"), "SD-10002": ("C0001", "in_transit"),
        "SD-10003": ("C0001", "processing"), "SD-10004": ("C0001", "delayed"),
        "SD-10005": ("C0001", "pending"), "SD-10006": ("C0002", "shipped"),
        "SD-10007": ("C0002", "cancelled"), "SD-10008": ("C0002", "returned"),
    }
    sd1 = orders["SD-10001"]
    assert sd1["delivered_at"] == (today - timedelta(days=10)).isoformat()
    assert sd1["items"][0]["sku"] == "TRG-SLT-09" and "Trail Runner" in sd1["items"][0]["name"]
    assert (sd1["carrier"], sd1["tracking_number"]) == ("UPS", "1Z4F7E290312345678")
    assert sd1["tracking_events"][-1]["description"] == "Delivered"
    sd2 = orders["SD-10002"]
    assert (sd2["carrier"], sd2["tracking_number"]) == ("UPS", "1Z4F7E290387654321")
    assert "Noise-Cancelling Headphones (Black)" in [i["name"] for i in sd2["items"]]
    assert len(sd2["tracking_events"]) >= 3 and _day(sd2["expected_delivery"]) > today
    assert orders["SD-10003"]["status"] == "processing" and "carrier" not in orders["SD-10003"]
    sd4 = orders["SD-10004"]
    assert (sd4["carrier"], sd4["tracking_number"]) == ("FedEx", "794612203345")
    assert sd4["tracking_events"][-1] == {**sd4["tracking_events"][-1], "location": "Sacramento, CA",
                                           "description": "Delayed: severe weather in the area"}
    assert _day(sd4["expected_delivery"]) < today
    assert "carrier" not in orders["SD-10005"] and _dt(orders["SD-10005"]["placed_at"]) >= now - timedelta(hours=1)
    sd6 = orders["SD-10006"]
    assert (sd6["carrier"], sd6["tracking_number"]) == ("USPS", "9400111899223344556677")
    assert sd6["shipped_at"] == (today - timedelta(days=1)).isoformat()
    assert orders["SD-10007"]["payment_method"] == "paypal" and "carrier" not in orders["SD-10007"]
    assert shop["returns"][0] == {**shop["returns"][0], "id": "RMA-1001", "order": "SD-10008", "status": "refunded",
                                  "refund_amount": 98.0, "items": [{"sku": "MCS-CHR-L", "qty": 1}]}
    assert [o["id"] for o in shop["orders"] if o["customer"] in ("C0001", "C0002")] == list(orders)


# ---- the database -------------------------------------------------------------------------------
def _table_counts(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in
                (Customer, Product, Order, OrderItem, Shipment, TrackingEvent, Payment, Return, ReturnItem)}


def test_seed_database(engine, shop):
    counts = seed_database(engine)
    assert counts == {"customers": 120, "products": len(shop["products"]), "orders": 400,
                      "returns": len(shop["returns"])}
    rows = _table_counts(engine)
    assert rows["orders"] == 400 and rows["customers"] == 120 and rows["returns"] == counts["returns"]
    assert rows["order_items"] == sum(len(o["items"]) for o in shop["orders"])
    assert rows["shipments"] == sum(1 for o in shop["orders"] if "carrier" in o)
    assert rows["tracking_events"] == sum(len(o.get("tracking_events", [])) for o in shop["orders"])
    assert rows["payments"] == 400

    store = ShopStore(engine)
    order = store.get_order("SD-10002")
    assert order is not None and order.status == "in_transit" and order.customer_id == "C0001"
    assert order.carrier == "UPS" and order.tracking_number == "1Z4F7E290387654321"
    assert len(order.events) >= 3 and order.events[0].location == "Reno, NV"
    assert order.expected_delivery > DEFAULT_NOW.date()
    assert any(i.name == "Noise-Cancelling Headphones (Black)" for i in order.items)
    assert store.customer_for_order("SD-10002", email="Ada.Park@example.com") == "C0001"
    assert store.customer_for_order("SD-10006", zip_code="10027") == "C0002"
    assert store.customer_for_order("SD-10006", email="ada.park@example.com") is None
    delivered = store.get_order("SD-10001")
    assert delivered.delivered_at == (DEFAULT_NOW - timedelta(days=10)).date()
    assert delivered.latest_event.description == "Delivered"
    assert store.snapshot(["SD-10008"])["returns"] == [
        {"id": "RMA-1001", "order": "SD-10008", "status": "refunded", "kind": "return", "refund_amount": 98.0,
         "items": [{"sku": "MCS-CHR-L", "qty": 1}]}]


def test_reseeding_needs_replace(engine):
    seed_database(engine, customers=10, orders=30)
    with pytest.raises(ValueError, match="replace=True"):
        seed_database(engine)
    assert _table_counts(engine)["orders"] == 30

    with Session(engine) as s, s.begin():  # the assistant's own rows survive a replace
        s.add(SessionRow(id="s1", state={}, created_at=DEFAULT_NOW, updated_at=DEFAULT_NOW))
    counts = seed_database(engine, seed=3, replace=True)
    assert counts["orders"] == 400 and _table_counts(engine)["orders"] == 400
    assert _table_counts(engine)["customers"] == 120
    with Session(engine) as s:
        assert s.get(SessionRow, "s1") is not None


def test_refuses_when_only_customers_exist(engine):
    with Session(engine) as s, s.begin():
        s.add(Customer(id="C900", name="Someone", email="someone@example.com"))
    with pytest.raises(ValueError, match="1 customers"):
        seed_database(engine)


def test_failed_replace_keeps_old_data(engine, monkeypatch):
    seed_database(engine, customers=10, orders=30)
    before = _table_counts(engine)
    broken = demo_fixtures(customers=10, orders=30)
    broken["orders"][-1]["customer"] = "C9999"  # valid format, fails on the foreign key while loading
    monkeypatch.setattr(seed_module, "demo_fixtures", lambda **_: broken)
    with pytest.raises(Exception):  # noqa: B017 - the database's IntegrityError, whatever the driver
        seed_database(engine, replace=True)
    assert _table_counts(engine) == before
