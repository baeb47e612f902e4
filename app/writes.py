"""The writes of the return, exchange and cancellation flows (design.md section 4).

Each write is one transaction that also writes its audit row (who, what, when, which clauses), and
is idempotent: the flow passes one ``key`` per confirmation, the ``returns.request_key`` and
``audit_log.request_key`` columns are unique, so a repeated, retried or double-sent "yes" finds the
row the first one wrote instead of making a second. Inside the transaction the facts the shopper
confirmed are checked again (the order still belongs to them, is still cancellable, the items are
still returnable in those quantities, the replacement is still in stock), because another chat, a
warehouse update or staff may have changed them between the summary and the "yes".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import AuditRow, Order, Payment, Product, Return, ReturnItem
from app.retry import RetryPolicy, db_retry

RMA_PREFIX = "RMA-"
FIRST_RMA = 1001
_ID_ATTEMPTS = 5  # an RMA id taken outside these writes (an import) is retried with the following number
_WRITE_LOCK_KEY = 0x5D0C_0002  # PostgreSQL advisory lock of the flow writes (migrations use ..0001)


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    qty: int
    replacement_sku: str | None = None  # exchanges: the variant sent instead


@dataclass(frozen=True)
class WriteRequest:
    key: str  # one per confirmation: the same key never writes twice
    session_id: str
    customer_id: str
    order_id: str
    clauses: tuple[str, ...]
    lines: tuple[ReturnLine, ...] = ()
    refund_amount: Decimal = Decimal("0.00")
    refund_method: str = ""
    reason: str = ""
    instructions: str = ""


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    object_id: str = ""  # the RMA id, or the order id of a cancellation
    created: bool = False  # False with ok: this confirmation was written before (a repeated yes)
    problem: str = ""  # why nothing was written: not_your_order | not_returnable | out_of_stock | not_cancellable


def _serialise(s: Session) -> None:
    """Flow writes take turns: the idempotency check, the re-checks and the next RMA number are read
    inside the lock, so concurrent confirmations neither both pass the checks nor pick the same id.
    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write statement first, which takes the
    database's write lock before any read (a read first would let two writers deadlock on upgrade)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY})
    else:
        s.execute(text("UPDATE returns SET id = id WHERE 1 = 0"))


class _OutOfStock(Exception):
    pass


class FlowWriter:
    """``retry``: a transient failure (SQLite's "database is locked" when two writers meet, a server
    restarting) re-runs the whole write; safe, because a write that did commit is found by its key."""

    def __init__(self, engine: Engine, retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()

    # ---- returns and exchanges ----------------------------------------------------------------
    @db_retry("create a return")
    def create_return(self, req: WriteRequest, at: datetime, kind: str = "return") -> WriteResult:
        """A return (or an exchange: lines with a replacement) in one transaction with its audit row."""
        for _ in range(_ID_ATTEMPTS):
            try:
                with Session(self.engine) as s, s.begin():
                    _serialise(s)
                    done = self._written(req.key, s)  # inside the lock: a concurrent same "yes" has committed
                    if done is not None:
                        return done
                    problem = self._check_return(s, req)
                    if problem:
                        return WriteResult(False, problem=problem)
                    if kind == "exchange" and not self._reserve(s, req.lines):
                        raise _OutOfStock
                    rma = self._next_rma(s)
                    s.add(Return(id=rma, order_id=req.order_id, status="requested", reason=req.reason[:400],
                                 refund_amount=req.refund_amount, created_at=at, kind=kind,
                                 refund_method=req.refund_method, instructions=req.instructions,
                                 session_id=req.session_id, request_key=req.key))
                    s.flush()  # the parent row first: PostgreSQL checks the items' foreign key per statement
                    s.add_all(ReturnItem(return_id=rma, sku=line.sku, qty=line.qty,
                                         replacement_sku=line.replacement_sku) for line in req.lines)
                    s.add(self._audit(req, at, "create_exchange" if kind == "exchange" else "create_return", rma,
                                      {"lines": [line.__dict__ for line in req.lines],
                                       "refund_amount": str(req.refund_amount), "refund_method": req.refund_method}))
                    _fault_exit(s, "before_commit")  # test-only (see _fault_exit)
                _fault_exit(None, "after_commit")  # test-only
                return WriteResult(True, rma, created=True)
            except _OutOfStock:  # the transaction rolled back: no stock taken, nothing written
                return WriteResult(False, problem="out_of_stock")
            except IntegrityError:
                done = self._written(req.key)  # a concurrent "yes" of the same confirmation won the race
                if done is not None:
                    return done
                # else two different returns picked the same RMA number: try the next one
        raise RuntimeError(f"could not allocate an RMA id after {_ID_ATTEMPTS} attempts")

    @staticmethod
    def _check_return(s: Session, req: WriteRequest) -> str:
        order = s.get(Order, req.order_id)
        if order is None or order.customer_id != req.customer_id:
            return "not_your_order"
        ordered: dict[str, int] = {}
        for item in order.items:
            ordered[item.sku] = ordered.get(item.sku, 0) + item.qty
        returned = dict(s.execute(
            select(ReturnItem.sku, func.sum(ReturnItem.qty)).join(Return, Return.id == ReturnItem.return_id)
            .where(Return.order_id == req.order_id, Return.status != "rejected").group_by(ReturnItem.sku)).all())
        for line in req.lines:
            if line.qty < 1 or line.qty > ordered.get(line.sku, 0) - int(returned.get(line.sku) or 0):
                return "not_returnable"
        return ""

    @staticmethod
    def _reserve(s: Session, lines: tuple[ReturnLine, ...]) -> bool:
        """Take the replacements out of stock; False (nothing taken) when one is not in stock any more."""
        for line in lines:
            if line.replacement_sku is None:
                continue
            taken = s.execute(update(Product).where(Product.sku == line.replacement_sku, Product.stock >= line.qty)
                              .values(stock=Product.stock - line.qty))
            if taken.rowcount != 1:
                return False
        return True

    @staticmethod
    def _next_rma(s: Session) -> str:
        numbers = [int(m.group(1)) for rid in s.scalars(select(Return.id))
                   if (m := re.fullmatch(rf"{RMA_PREFIX}(\d+)", rid))]
        return f"{RMA_PREFIX}{max(numbers, default=FIRST_RMA - 1) + 1}"

    # ---- cancellations ------------------------------------------------------------------------
    @db_retry("cancel an order")
    def cancel_order(self, req: WriteRequest, at: datetime, allowed_statuses: frozenset[str]) -> WriteResult:
        """Cancel the order and refund (or void) its payments, if its status still allows it."""
        try:
            with Session(self.engine) as s, s.begin():
                _serialise(s)
                done = self._written(req.key, s)
                if done is not None:
                    return done
                order = s.scalars(select(Order).where(Order.id == req.order_id).with_for_update()).first()
                if order is None or order.customer_id != req.customer_id:
                    return WriteResult(False, problem="not_your_order")
                if order.status not in allowed_statuses:
                    return WriteResult(False, req.order_id, problem="not_cancellable")
                before = order.status
                order.status = "cancelled"
                for payment in s.scalars(select(Payment).where(Payment.order_id == req.order_id)):
                    payment.status = {"captured": "refunded", "authorized": "voided"}.get(payment.status,
                                                                                         payment.status)
                s.add(self._audit(req, at, "cancel_order", req.order_id,
                                  {"status_before": before, "refund_amount": str(req.refund_amount),
                                   "refund_method": req.refund_method}))
            return WriteResult(True, req.order_id, created=True)
        except IntegrityError:
            done = self._written(req.key)
            if done is None:
                raise
            return done

    # ---- helpers ------------------------------------------------------------------------------
    def _written(self, key: str, session: Session | None = None) -> WriteResult | None:
        if session is None:
            with Session(self.engine) as s:
                return self._written(key, s)
        object_id = session.scalar(select(AuditRow.object_id).where(AuditRow.request_key == key))
        return WriteResult(True, object_id, created=False) if object_id else None

    @staticmethod
    def _audit(req: WriteRequest, at: datetime, action: str, object_id: str, detail: dict[str, Any]) -> AuditRow:
        return AuditRow(at=at, session_id=req.session_id, customer_id=req.customer_id, action=action,
                        order_id=req.order_id, object_id=object_id, clauses=list(req.clauses), detail=detail,
                        request_key=req.key)


# ---- test-only fault injection (issue 10, tests/test_fault_kill.py) ------------------------------------
FAULT_EXIT_ENV = "SHOPDESK_FAULT_EXIT"


def _fault_exit(s: Session | None, point: str) -> None:
    """With ``SHOPDESK_FAULT_EXIT=before_commit`` (or ``after_commit``) the process dies on the spot, as a
    server killed between the shopper's "yes" and the commit (or just after it, before the turn is saved)
    would: ``os._exit`` runs no cleanup, so nothing gets a chance to commit or roll back politely. Before
    the commit every row of the return is flushed first, so the uncommitted rows are really in the
    database's transaction when the process dies. Never set it outside that test."""
    if os.environ.get(FAULT_EXIT_ENV) != point:
        return
    if s is not None:
        s.flush()
    os._exit(1)
