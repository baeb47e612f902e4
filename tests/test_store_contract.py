"""The shop store's contract, written once and run on SQLite and on PostgreSQL (fixture ``db_engine``).

PostgreSQL runs when ``SHOPDESK_TEST_POSTGRES_URL`` is set (``.ci/run`` starts a server and sets
it); outside CI without it those cases skip, saying how to start one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Base, Customer, Order, Payment, SessionRow, TrackingEvent, TurnRow, make_engine, migrate
from app.fixtures import FixtureError, load_fixtures
from app.migrations import MIGRATIONS, applied_versions
from app.schema import Reply, SessionState
from app.seed import demo_fixtures, seed_database
from app.session import SessionRepository
from app.store import EventView, ItemView, OrderView, PaymentView, ReturnView, ShopStore

NOW = datetime(2026, 3, 15, 10, 0)
SMALL = {"customers": 12, "orders": 40}


def _order(oid: str, customer: str, placed: str, **extra) -> dict:
    return {"id": oid, "customer": customer, "placed_at": placed, "status": "processing",
            "items": [{"sku": "MUG-1", "name": "Camp mug", "qty": 3, "price": "19.99", "category": "home"}], **extra}


SHOP = {
    "customers": [{"id": "C1", "name": "Ada Park", "email": "Ada.Park@Example.com", "zip": "94110"},
                  {"id": "C2", "name": "Ben Okafor", "email": "ben@example.com", "zip": "10027"}],
    "orders": [_order("SD-20001", "C1", "2026-03-01T09:00:00", shipping_zip="73301"),
               _order("SD-20002", "C1", "2026-03-05T09:00:00"),
               _order("SD-20003", "C1", "2026-03-05T09:00:00"),  # same time as SD-20002: the id breaks the tie
               _order("SD-20004", "C2", "2026-02-01T09:00:00", payment_method="visa-4242")],
}


# ---- schema and migrations ------------------------------------------------------------------------
def _normalised_type(type_, dialect) -> str:
    compiled = type_.compile(dialect=dialect).upper()
    return {"DATETIME": "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "DOUBLE PRECISION": "DOUBLE",
            "FLOAT": "DOUBLE"}.get(compiled, compiled).replace(", ", ",")


def test_migrating_an_empty_database_gives_exactly_the_models_schema(db_engine):
    """A model change without a migration (or the reverse) fails here, on both databases."""
    insp = inspect(db_engine)
    dialect = db_engine.dialect
    assert set(insp.get_table_names()) - {"schema_migrations"} == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        got = {c["name"]: (_normalised_type(c["type"], dialect), c["nullable"]) for c in insp.get_columns(name)}
        want = {c.name: (_normalised_type(c.type, dialect), c.nullable) for c in table.columns}
        assert got == want, name
        got_idx = {(tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(name)}
        want_idx = {(tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes}
        assert want_idx <= got_idx, name
        got_fk = {(tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(name)}
        want_fk = {((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys}
        assert got_fk == want_fk, name


def test_migrate_twice_applies_nothing_the_second_time(db_engine):
    assert applied_versions(db_engine) == [v for v, _, _ in MIGRATIONS]
    assert migrate(db_engine) == []


def test_a_version_1_database_with_rows_upgrades_and_keeps_them(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        assert migrate(engine, target=1) == [1]
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sessions (id, state, created_at, updated_at) "
                              "VALUES ('old', '{\"session_id\": \"old\"}', :t, :t)"), {"t": NOW})
            conn.execute(text("INSERT INTO turns (session_id, at, user_text, reply_text, intent, route, confidence, "
                              "latency_ms, reply) VALUES ('old', :t, 'hi', 'hello', 'smalltalk.greeting', "
                              "'smalltalk', 0.9, 12.0, '{}')"), {"t": NOW})
        assert migrate(engine) == [v for v, _, _ in MIGRATIONS if v > 1]
        with Session(engine) as s:
            turn = s.scalars(select(TurnRow)).one()
            assert (turn.user_text, turn.facts_kind, turn.generated_by) == ("hi", "", "")
            assert s.get(SessionRow, "old").customer_id is None
        assert SessionRepository(engine).load("old") == SessionState(session_id="old")
    finally:
        engine.dispose()


# ---- the demo shop round trip ---------------------------------------------------------------------
def _expected_view(row: dict, returns: list[dict]) -> OrderView:
    def dt(v: str) -> datetime:
        return datetime.fromisoformat(v)

    def day(v: str | None) -> date | None:
        return date.fromisoformat(v) if v else None

    items = tuple(ItemView(i["sku"], i["name"], i["qty"], Decimal(str(i["price"])).quantize(Decimal("0.01")),
                           i["category"], i["final_sale"]) for i in row["items"])
    total = sum((i.price * i.qty for i in items), Decimal("0"))
    status = "authorized" if row["status"] in ("pending", "cancelled") else "captured"
    return OrderView(
        id=row["id"], customer_id=row["customer"], status=row["status"], placed_at=dt(row["placed_at"]), items=items,
        carrier=row.get("carrier", ""), tracking_number=row.get("tracking_number", ""),
        shipped_at=day(row.get("shipped_at")), expected_delivery=day(row.get("expected_delivery")),
        delivered_at=day(row.get("delivered_at")),
        events=tuple(EventView(dt(e["at"]), e["location"], e["description"])
                     for e in sorted(row.get("tracking_events") or [], key=lambda e: e["at"])),
        payment_method=row["payment_method"], payments=(PaymentView(row["payment_method"], total, status),),
        shipping_zip=row.get("shipping_zip", ""),
        returns=tuple(ReturnView(r["id"], r["status"], Decimal(str(r["refund_amount"])).quantize(Decimal("0.01")),
                                 dt(r["created_at"]), tuple((i["sku"], i["qty"]) for i in r["items"]))
                      for r in returns),
    )


def test_every_seeded_order_reads_back_exactly_as_generated(db_engine):
    counts = seed_database(db_engine, seed=3, now=NOW, **SMALL)
    shop = demo_fixtures(seed=3, now=NOW, **SMALL)
    assert counts == {t: len(shop[t]) for t in ("customers", "products", "orders", "returns")}
    store = ShopStore(db_engine)
    for row in shop["orders"]:
        returns = [r for r in shop["returns"] if r["order"] == row["id"]]
        assert store.get_order(row["id"]) == _expected_view(row, returns), row["id"]
    statuses = {o["status"] for o in shop["orders"]}
    assert statuses == {"pending", "processing", "shipped", "in_transit", "delayed", "delivered", "cancelled",
                        "returned"}


def test_seeding_twice_needs_replace_and_replace_swaps_the_shop(db_engine):
    seed_database(db_engine, seed=3, now=NOW, **SMALL)
    with pytest.raises(ValueError, match="already has shop data"):
        seed_database(db_engine, seed=3, now=NOW, **SMALL)
    seed_database(db_engine, seed=4, now=NOW, customers=10, orders=30, replace=True)
    with Session(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 30
        assert s.scalar(select(func.count()).select_from(Customer)) == 10


# ---- reads ----------------------------------------------------------------------------------------
def test_orders_of_a_customer_newest_first_ties_by_id(db_engine):
    load_fixtures(db_engine, SHOP)
    store = ShopStore(db_engine)
    assert [o.id for o in store.orders_of("C1")] == ["SD-20003", "SD-20002", "SD-20001"]
    assert store.orders_of("nobody") == [] and store.get_order("SD-99999") is None


def test_money_is_exact(db_engine):
    load_fixtures(db_engine, SHOP)
    order = ShopStore(db_engine).get_order("SD-20004")
    assert order.total == Decimal("59.97") and order.payments[0].amount == Decimal("59.97")


def test_customer_for_order_by_email_or_billing_zip_only(db_engine):
    load_fixtures(db_engine, SHOP)
    store = ShopStore(db_engine)
    assert store.customer_for_order("SD-20001", email="  ada.park@EXAMPLE.com ") == "C1"
    assert store.customer_for_order("SD-20001", zip_code="94110") == "C1"
    assert store.customer_for_order("SD-20001", zip_code="94110-4321") == "C1"  # ZIP+4
    assert store.customer_for_order("SD-20001", zip_code="73301") is None  # the shipping zip is on the parcel
    assert store.customer_for_order("SD-20001", email="ben@example.com") is None
    assert store.customer_for_order("SD-20004", email="ada.park@example.com") is None
    assert store.customer_for_order("SD-99999", email="ada.park@example.com") is None
    assert store.customer_for_order("SD-20001") is None
    assert store.customer_exists("C1") and not store.customer_exists("C9")


def test_timezones_in_fixtures_are_stored_as_utc(db_engine):
    order = _order("SD-20009", "C1", "2026-03-01T09:00:00+02:00", carrier="UPS", tracking_number="1Z1",
                   tracking_events=[{"at": "2026-03-02T23:30:00-08:00", "description": "Departed"}])
    load_fixtures(db_engine, {"customers": SHOP["customers"][:1], "orders": [order]})
    view = ShopStore(db_engine).get_order("SD-20009")
    assert view.placed_at == datetime(2026, 3, 1, 7, 0)
    assert view.events[0].at == datetime(2026, 3, 3, 7, 30)


# ---- writes ---------------------------------------------------------------------------------------
def test_a_load_that_fails_in_the_database_writes_nothing(db_engine):
    bad = {"customers": [{"id": "C7", "name": "New", "email": "new@example.com"}],
           "orders": [_order("SD-20010", "C-missing", "2026-03-01")]}  # valid rows, but no such customer
    with pytest.raises(IntegrityError):
        load_fixtures(db_engine, bad)
    with Session(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0


def test_values_too_long_for_a_column_fail_the_same_on_both_databases(db_engine):
    # SQLite would store a 201-character name; PostgreSQL would refuse it. Validation decides first.
    with pytest.raises(FixtureError, match=r"name: 201 characters, at most 200"):
        load_fixtures(db_engine, {"customers": [{"id": "C1", "name": "x" * 201, "email": "a@example.com"}]})


def test_failed_verifications_by_session_and_client_within_a_window(db_engine):
    store = ShopStore(db_engine)
    for minutes, session, client, ok in [(0, "s1", "ip1", False), (5, "s1", "ip2", False), (6, "s2", "ip1", False),
                                         (7, "s2", "ip1", True), (40, "s3", "ip1", False)]:
        store.record_verification(session, client, NOW + timedelta(minutes=minutes), ok, method="order",
                                  reason="" if ok else "details")
    since = NOW + timedelta(minutes=1)
    assert store.failure_times(since, session_id="s1") == [NOW + timedelta(minutes=5)]
    assert store.failure_times(since, client_id="ip1") == [NOW + timedelta(minutes=6), NOW + timedelta(minutes=40)]
    assert store.failed_verifications("ip1", NOW) == 3


def test_one_handoff_ticket_per_session(db_engine):
    store = ShopStore(db_engine)
    first, created = store.open_handoff_ticket("s1", None, "where is my parcel", NOW)
    again, created_again = store.open_handoff_ticket("s1", None, "hello?", NOW)
    assert created and not created_again and first == again
    assert len(store.snapshot([])["handoff_tickets"]) == 1


def test_session_state_and_turns_round_trip(db_engine):
    repo = SessionRepository(db_engine)
    state = SessionState(session_id="s1", customer_id="C1", verified_orders=("SD-20001",), failed_verifications=2)
    reply = Reply(session_id="s1", text="Your order SD-20001 is processing.", intent="order_status.where_is_order",
                  confidence=0.93, route="order_status", verified=True, facts_kind="order_status",
                  generated_by="template", timings={"total": 0.05})
    repo.save_turn(state, "where is SD-20001, ada@example.com", reply, NOW)
    repo.save_turn(state, "thanks", reply, NOW + timedelta(seconds=5))
    assert repo.load("s1") == state
    turns = repo.turns("s1")
    assert [t["user"] for t in turns] == ["where is SD-20001, a***@example.com", "thanks"]
    assert turns[0]["facts_kind"] == "order_status" and turns[0]["latency_ms"] == pytest.approx(50.0)
    assert ShopStore(db_engine).session_customer("s1") == "C1"


def test_tracking_events_come_back_in_time_order(db_engine):
    events = [{"at": "2026-03-03T09:00:00", "location": "B", "description": "Second"},
              {"at": "2026-03-02T09:00:00", "location": "A", "description": "First"}]
    order = _order("SD-20011", "C1", "2026-03-01", carrier="UPS", tracking_events=events)
    load_fixtures(db_engine, {"customers": SHOP["customers"][:1], "orders": [order]})
    view = ShopStore(db_engine).get_order("SD-20011")
    assert [e.description for e in view.events] == ["First", "Second"] and view.latest_event.location == "B"
    with Session(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(TrackingEvent)) == 2
        assert s.scalar(select(func.count()).select_from(Payment)) == 0
