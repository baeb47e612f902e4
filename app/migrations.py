"""Numbered schema migrations, applied in order and recorded in ``schema_migrations``.

Each migration describes the schema change it makes with its own frozen table definitions, never
with the current models of ``app.db``: a database created by an older Shopdesk must reach exactly
the schema a new one gets. ``tests/test_store_contract.py`` checks that migrating an empty database
yields the tables, columns and indexes of ``app.db.Base`` on SQLite and on PostgreSQL, so a model
change without a migration fails there. Add ``m005_...`` for the next change; never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeEngine

# PostgreSQL advisory-lock key: app workers starting together migrate one after another.
_PG_LOCK_KEY = 0x5D0C_0001


def _m001_initial(conn: Connection) -> None:
    """The first schema (shop, returns, sessions, turns, verification attempts, handoff tickets).

    It used to be ``Base.metadata.create_all``, which silently changed with every model edit; these
    are its tables frozen as they were (the same DDL on SQLite and PostgreSQL, compared when frozen),
    so databases created before keep working and upgrade through m002 onwards.
    """
    m = MetaData()
    money = Numeric(10, 2)
    Table("customers", m,
          Column("id", String(32), primary_key=True), Column("name", String(200), nullable=False),
          Column("email", String(320), nullable=False, index=True), Column("zip", String(16), nullable=False),
          Column("phone", String(40), nullable=False), Column("address", String(400), nullable=False))
    Table("products", m,
          Column("sku", String(64), primary_key=True), Column("product", String(64), nullable=False, index=True),
          Column("name", String(200), nullable=False), Column("attributes", JSON, nullable=False),
          Column("price", money, nullable=False), Column("category", String(40), nullable=False),
          Column("stock", Integer, nullable=False), Column("final_sale", Boolean, nullable=False))
    Table("orders", m,
          Column("id", String(32), primary_key=True),
          Column("customer_id", String(32), ForeignKey("customers.id"), nullable=False, index=True),
          Column("placed_at", DateTime, nullable=False), Column("status", String(20), nullable=False, index=True),
          Column("payment_method", String(40), nullable=False), Column("shipping_zip", String(16), nullable=False),
          Column("note", Text, nullable=False))
    Table("order_items", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("order_id", String(32), ForeignKey("orders.id"), nullable=False, index=True),
          Column("sku", String(64), nullable=False), Column("name", String(200), nullable=False),
          Column("qty", Integer, nullable=False), Column("price", money, nullable=False),
          Column("category", String(40), nullable=False), Column("final_sale", Boolean, nullable=False))
    Table("shipments", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("order_id", String(32), ForeignKey("orders.id"), nullable=False, unique=True),
          Column("carrier", String(40), nullable=False), Column("tracking_number", String(64), nullable=False),
          Column("shipped_at", Date, nullable=True), Column("expected_delivery", Date, nullable=True),
          Column("delivered_at", Date, nullable=True))
    Table("tracking_events", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("shipment_id", Integer, ForeignKey("shipments.id"), nullable=False, index=True),
          Column("at", DateTime, nullable=False), Column("location", String(200), nullable=False),
          Column("description", String(400), nullable=False))
    Table("payments", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("order_id", String(32), ForeignKey("orders.id"), nullable=False, index=True),
          Column("method", String(40), nullable=False), Column("amount", money, nullable=False),
          Column("status", String(20), nullable=False), Column("at", DateTime, nullable=False))
    Table("returns", m,
          Column("id", String(32), primary_key=True),
          Column("order_id", String(32), ForeignKey("orders.id"), nullable=False, index=True),
          Column("status", String(20), nullable=False), Column("reason", String(400), nullable=False),
          Column("refund_amount", money, nullable=False), Column("created_at", DateTime, nullable=False))
    Table("return_items", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("return_id", String(32), ForeignKey("returns.id"), nullable=False, index=True),
          Column("sku", String(64), nullable=False), Column("qty", Integer, nullable=False))
    Table("sessions", m,
          Column("id", String(64), primary_key=True), Column("state", JSON, nullable=False),
          Column("created_at", DateTime, nullable=False), Column("updated_at", DateTime, nullable=False))
    Table("turns", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False, index=True),
          Column("at", DateTime, nullable=False), Column("user_text", Text, nullable=False),
          Column("reply_text", Text, nullable=False), Column("intent", String(64), nullable=False),
          Column("route", String(32), nullable=False, index=True), Column("confidence", Double, nullable=False),
          Column("latency_ms", Double, nullable=False), Column("reply", JSON, nullable=False))
    Table("verification_attempts", m,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("session_id", String(64), nullable=False, index=True),
          Column("client_id", String(128), nullable=False, index=True),
          Column("at", DateTime, nullable=False, index=True), Column("success", Boolean, nullable=False))
    Table("handoff_tickets", m,
          Column("id", String(32), primary_key=True), Column("session_id", String(64), nullable=False, unique=True),
          Column("customer_id", String(32), nullable=True), Column("summary", Text, nullable=False),
          Column("status", String(20), nullable=False), Column("created_at", DateTime, nullable=False))
    m.create_all(conn)


def _add_column(conn: Connection, table: str, name: str, type_: TypeEngine, nullable: bool = True,
                default: str | None = None) -> None:
    """``ALTER TABLE .. ADD COLUMN`` in the syntax SQLite and PostgreSQL share.

    A NOT NULL column needs a server default so the rows already there get a value.
    """
    q = conn.dialect.identifier_preparer.quote
    ddl = f"ALTER TABLE {q(table)} ADD COLUMN {q(name)} {type_.compile(dialect=conn.dialect)}"
    if default is not None:
        ddl += " DEFAULT '" + default.replace("'", "''") + "'"
    if not nullable:
        ddl += " NOT NULL"
    conn.execute(text(ddl))


def _m002_sessions_turns_attempts(conn: Connection) -> None:
    """Who a session is verified as, how each turn was answered, how each verification went.

    - ``sessions.customer_id``: staff find a customer's chats without reading every state blob;
    - ``turns.facts_kind`` / ``turns.generated_by``: guard acceptance and template use per route;
    - ``verification_attempts.method`` / ``.reason``: order details vs signed token, and why one failed
      (wrong details, expired or forged token) for security review;
    - ``ix_orders_customer_placed``: "my last order" reads a customer's orders newest first.
    """
    _add_column(conn, "sessions", "customer_id", String(32), nullable=True)
    _add_column(conn, "turns", "facts_kind", String(40), nullable=False, default="")
    _add_column(conn, "turns", "generated_by", String(80), nullable=False, default="")
    _add_column(conn, "verification_attempts", "method", String(16), nullable=False, default="")
    _add_column(conn, "verification_attempts", "reason", String(32), nullable=False, default="")
    m = MetaData()
    sessions = Table("sessions", m, Column("customer_id", String(32)))
    orders = Table("orders", m, Column("customer_id", String(32)), Column("placed_at", DateTime))
    Index("ix_sessions_customer_id", sessions.c.customer_id).create(conn)
    Index("ix_orders_customer_placed", orders.c.customer_id, orders.c.placed_at).create(conn)


def _m003_feedback_session_tokens(conn: Connection) -> None:
    """Shopper and staff feedback on a turn (one rating per turn), and the web API's session tokens."""
    m = MetaData()
    Table("turns", m, Column("id", Integer, primary_key=True))  # the foreign key's target, not created here
    feedback = Table("feedback", m,
                     Column("id", Integer, primary_key=True, autoincrement=True),
                     Column("turn_id", Integer, ForeignKey("turns.id"), nullable=False, unique=True, index=True),
                     Column("session_id", String(64), nullable=False, index=True),
                     Column("rating", Integer, nullable=False), Column("comment", Text, nullable=False),
                     Column("channel", String(16), nullable=False),
                     Column("created_at", DateTime, nullable=False, index=True))
    tokens = Table("session_tokens", m,
                   Column("session_id", String(64), primary_key=True),
                   Column("token_hash", String(64), nullable=False), Column("created_at", DateTime, nullable=False))
    m.create_all(conn, tables=[feedback, tokens])


def _m004_return_flows(conn: Connection) -> None:
    """What the return, exchange and cancellation flows write (issue 5).

    - ``returns.kind`` (return | exchange), ``refund_method``, ``instructions`` (the label or drop-off
      text the shopper was given), ``session_id``, and ``request_key``: unique, so a repeated or
      double-sent "yes" of one confirmation creates one row;
    - ``return_items.replacement_sku``: the variant an exchanged item is swapped for;
    - ``audit_log``: one row per write (who, what, when, which policy clauses), written in the same
      transaction as the write itself.
    """
    _add_column(conn, "returns", "kind", String(16), nullable=False, default="return")
    _add_column(conn, "returns", "refund_method", String(40), nullable=False, default="")
    _add_column(conn, "returns", "instructions", Text(), nullable=False, default="")
    _add_column(conn, "returns", "session_id", String(64), nullable=True)
    _add_column(conn, "returns", "request_key", String(64), nullable=True)
    _add_column(conn, "return_items", "replacement_sku", String(64), nullable=True)
    m = MetaData()
    returns = Table("returns", m, Column("request_key", String(64)))
    Index("ix_returns_request_key", returns.c.request_key, unique=True).create(conn)
    audit = Table("audit_log", m,
                  Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("at", DateTime, nullable=False, index=True),
                  Column("session_id", String(64), nullable=False, index=True),
                  Column("customer_id", String(32), nullable=True),
                  Column("action", String(32), nullable=False),
                  Column("order_id", String(32), nullable=False, index=True),
                  Column("object_id", String(32), nullable=False),
                  Column("clauses", JSON, nullable=False), Column("detail", JSON, nullable=False),
                  Column("request_key", String(64), nullable=False, unique=True))
    m.create_all(conn, tables=[audit])


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "initial", _m001_initial),
    (2, "sessions_turns_attempts", _m002_sessions_turns_attempts),
    (3, "feedback_session_tokens", _m003_feedback_session_tokens),
    (4, "return_flows", _m004_return_flows),
)

_VERSIONS = MetaData()
schema_migrations = Table("schema_migrations", _VERSIONS,
                          Column("version", Integer, primary_key=True), Column("name", String(100)),
                          Column("applied_at", DateTime))


def applied_versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return []
        return sorted(conn.execute(select(schema_migrations.c.version)).scalars())


def migrate(engine: Engine, target: int | None = None) -> list[int]:
    """Apply the migrations not yet applied (up to ``target``), in one transaction; returns those applied now."""
    applied_now = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if not inspect(conn).has_table("schema_migrations"):
            _VERSIONS.create_all(conn)
        done = set(conn.execute(select(schema_migrations.c.version)).scalars())
        for version, name, fn in MIGRATIONS:
            if version in done or (target is not None and version > target):
                continue
            fn(conn)
            conn.execute(schema_migrations.insert().values(
                version=version, name=name, applied_at=datetime.now(UTC).replace(tzinfo=None)))
            applied_now.append(version)
    return applied_now
