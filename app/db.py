"""The database: SQLAlchemy 2.x tables for the shop and the assistant, and numbered migrations.

SQLite file by default, PostgreSQL by URL (``SHOPDESK_DATABASE_URL``, e.g.
``postgresql+psycopg://user:password@host:5432/shopdesk``); the same code runs on both. The schema
is made by the numbered migrations of ``app.migrations`` (re-exported here), not by these models:
change a model only together with a new migration (a contract test compares the two).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.migrations import MIGRATIONS as MIGRATIONS
from app.migrations import migrate as migrate

Money = Numeric(10, 2)


class Base(DeclarativeBase):
    pass


# ---- shop ---------------------------------------------------------------------------------------
class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), index=True)
    zip: Mapped[str] = mapped_column(String(16), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(400), default="")
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Product(Base):
    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(64), index=True)  # product family; variants share it
    name: Mapped[str] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    price: Mapped[Decimal] = mapped_column(Money)
    category: Mapped[str] = mapped_column(String(40))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    final_sale: Mapped[bool] = mapped_column(Boolean, default=False)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), index=True)
    payment_method: Mapped[str] = mapped_column(String(40), default="")
    shipping_zip: Mapped[str] = mapped_column(String(16), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    customer: Mapped[Customer] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(back_populates="order", order_by="OrderItem.id")
    shipment: Mapped[Shipment | None] = relationship(back_populates="order", uselist=False)
    payments: Mapped[list[Payment]] = relationship(order_by="Payment.id")
    returns: Mapped[list[Return]] = relationship(order_by="Return.created_at", viewonly=True)
    __table_args__ = (Index("ix_orders_customer_placed", "customer_id", "placed_at"),)


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Money)
    category: Mapped[str] = mapped_column(String(40))
    final_sale: Mapped[bool] = mapped_column(Boolean, default=False)
    order: Mapped[Order] = relationship(back_populates="items")


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(40), default="")
    tracking_number: Mapped[str] = mapped_column(String(64), default="")
    shipped_at: Mapped[date | None] = mapped_column(Date, nullable=True)
    expected_delivery: Mapped[date | None] = mapped_column(Date, nullable=True)
    delivered_at: Mapped[date | None] = mapped_column(Date, nullable=True)
    order: Mapped[Order] = relationship(back_populates="shipment")
    events: Mapped[list[TrackingEvent]] = relationship(order_by="TrackingEvent.at")


class TrackingEvent(Base):
    __tablename__ = "tracking_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    location: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(400))


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    method: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20))  # authorized | captured | refunded
    at: Mapped[datetime] = mapped_column(DateTime)


class Return(Base):
    __tablename__ = "returns"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # RMA-1001
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # requested | received | refunded | rejected
    reason: Mapped[str] = mapped_column(String(400), default="")
    refund_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16), default="return", server_default="return")  # m004: | exchange
    refund_method: Mapped[str] = mapped_column(String(40), default="", server_default="")  # m004
    instructions: Mapped[str] = mapped_column(Text, default="", server_default="")  # m004: label / drop-off text
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # m004: the chat that created it
    request_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # m004: one row per confirmation
    items: Mapped[list[ReturnItem]] = relationship(order_by="ReturnItem.id")
    __table_args__ = (Index("ix_returns_request_key", "request_key", unique=True),)


class ReturnItem(Base):
    __tablename__ = "return_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(Integer)
    replacement_sku: Mapped[str | None] = mapped_column(String(64), nullable=True)  # m004: exchanges


class AuditRow(Base):  # m004: one row per write a flow makes, in the write's own transaction
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(32))  # create_return | create_exchange | cancel_order
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    object_id: Mapped[str] = mapped_column(String(32))  # RMA id, or the order id for a cancellation
    clauses: Mapped[list[str]] = mapped_column(JSON)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)


# ---- assistant ----------------------------------------------------------------------------------
class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # m002
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class TurnRow(Base):
    __tablename__ = "turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    user_text: Mapped[str] = mapped_column(Text)  # PII-masked copy of what the shopper wrote
    reply_text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(32), index=True)
    confidence: Mapped[float] = mapped_column()
    latency_ms: Mapped[float] = mapped_column()
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Reply, PII-masked
    facts_kind: Mapped[str] = mapped_column(String(40), default="", server_default="")  # m002
    generated_by: Mapped[str] = mapped_column(String(80), default="", server_default="")  # m002


class VerificationAttempt(Base):
    __tablename__ = "verification_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(16), default="", server_default="")  # order | token (m002)
    reason: Mapped[str] = mapped_column(String(32), default="", server_default="")  # why it failed (m002)


class HandoffTicket(Base):
    __tablename__ = "handoff_tickets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # HT-...
    session_id: Mapped[str] = mapped_column(String(64), unique=True)  # one open ticket per session
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Feedback(Base):  # m003: thumbs up/down on a turn (widget, API, staff demo); the latest rating wins
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), unique=True, index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    rating: Mapped[int] = mapped_column(Integer)  # +1 thumbs up, -1 thumbs down
    comment: Mapped[str] = mapped_column(Text, default="")  # PII-masked
    channel: Mapped[str] = mapped_column(String(16), default="")  # widget | api | demo
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class SessionToken(Base):  # m003: the API's per-session secret (its SHA-256); only its holder reads the session
    __tablename__ = "session_tokens"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


# ---- engine ------------------------------------------------------------------------------------------
def database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the PostgreSQL driver Shopdesk installs."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def display_url(url: str) -> str:
    """The URL for messages and logs: the password masked."""
    from sqlalchemy.engine import make_url

    return make_url(database_url(url)).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    url = database_url(url)
    # hide_parameters: an error message never carries a shopper's email or address from the SQL parameters
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:  # a server may restart under a long-running app: test pooled connections before use
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
    return engine
