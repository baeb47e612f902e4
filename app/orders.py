"""Order status for a verified shopper (design.md section 4). Pure over (state, message, store).

- Order data only for a verified shopper (``app.verification``: order number + email or billing
  zip, or a signed customer token). An unverified shopper never learns whether an order number
  exists: a wrong email and an unknown order number get the same reply and both count as failures.
- One customer per session: a verified shopper asking about an order that is not theirs gets the
  same reply whether it exists or not, nothing about it, and the lookup counts as a failure.
- A verified shopper can name an order without its number ("my last order", "the order with the
  headphones"); when that fits several orders, the reply lists them and asks which (``app.order_match``).
- Every fact in the reply comes from the order's rows (``order_facts``).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from app.config import Settings
from app.identify import identify
from app.order_match import parse_reference, resolve
from app.schema import Entities, Facts, Flow, HandlerResult, SessionState
from app.store import OrderView, ShopStore
from app.verification import Lockout, Verifier

ROUTE = "order_status"
FLOW = "verify_order"  # the order lookup flow: waiting for verification details, or for a pick from a list
MAX_LISTED = 5
STATUS_TEXT = {
    "pending": "pending", "processing": "processing", "shipped": "shipped", "in_transit": "in transit",
    "delayed": "delayed", "delivered": "delivered", "cancelled": "cancelled", "returned": "returned",
}
NEXT_STEP = {
    "pending": "We'll start preparing it shortly; you can still cancel it until it ships.",
    "processing": "Our warehouse is preparing it; it usually ships within 1 business day.",
    "shipped": "It's on its way; you can follow it with the tracking number.",
    "in_transit": "It's on its way; you can follow it with the tracking number.",
    "delayed": ("The carrier has reported a delay. If it hasn't arrived in 3 business days, ask me for a person "
                "and we'll investigate."),
    "delivered": "If you can't find it, check with neighbours or your building's mailroom, or ask me for a person.",
    "cancelled": "It won't be shipped.",
    "returned": "The return has been processed.",
}
_UNSHIPPED = ("pending", "processing", "cancelled")


def fmt_date(value: date | datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else ""


def money(amount: object) -> str:
    return f"${amount:,.2f}"


def _payment_line(order: OrderView) -> str:
    """What happened to the money of a cancelled order, from its payment rows."""
    if not order.payments or all(p.status in ("authorized", "voided") for p in order.payments):
        return "You were not charged for it."
    refunded = [p for p in order.payments if p.status == "refunded"]
    if refunded:
        return f"Your payment of {money(sum(p.amount for p in refunded))} was refunded to {refunded[0].method}."
    return "Your payment for it will be refunded to the original payment method."


def order_facts(order: OrderView, now: datetime | None = None) -> Facts:
    status = STATUS_TEXT.get(order.status, order.status)
    items = ", ".join(f"{i.qty} x {i.name}" if i.qty > 1 else i.name for i in order.items)
    event = order.latest_event
    late = bool(now and order.expected_delivery and not order.delivered_at and order.status not in _UNSHIPPED
                and order.expected_delivery < now.date())
    next_step = NEXT_STEP.get(order.status, "")
    if order.status == "cancelled":
        next_step = f"{next_step} {_payment_line(order)}"
    returns = "; ".join(f"return {r.id} is {r.status}" + (f" (refund {money(r.refund_amount)})" if r.refund_amount
                                                           else "") for r in order.returns)
    data = {
        "order_id": order.id,
        "status": order.status,
        "status_text": status,
        "items_text": items,
        "items": [{"name": i.name, "qty": i.qty} for i in order.items],  # the widget's order card lists them
        "placed": fmt_date(order.placed_at),
        "shipped": fmt_date(order.shipped_at),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "expected": fmt_date(order.expected_delivery) if order.status not in _UNSHIPPED else "",
        "expected_passed": late,
        "delivered": fmt_date(order.delivered_at),
        "latest_event": (f"{event.description}" + (f", {event.location}" if event.location else "")
                         + f" ({fmt_date(event.at)})") if event else "",
        "returns_text": returns,
        "next_step": next_step,
    }
    must = [order.id, status] + ([order.tracking_number] if order.tracking_number else [])
    return Facts(kind="order_status", route=ROUTE, data=data, must_say=tuple(must))


def order_summary(order: OrderView) -> str:
    """One order in a list the shopper picks from: id, date, status, items."""
    names = ", ".join(i.name for i in order.items[:3]) + (", ..." if len(order.items) > 3 else "")
    return f"{order.id} (placed {fmt_date(order.placed_at)}, {STATUS_TEXT.get(order.status, order.status)}: {names})"


class OrderStatusHandler:
    def __init__(self, store: ShopStore, settings: Settings) -> None:
        self.store = store
        self.verifier = Verifier(store, settings)
        self.min_similarity = settings.item_match_min_similarity

    def handle(self, state: SessionState, entities: Entities, client_id: str, now: datetime, text: str = "",
               customer_token: str | None = None) -> HandlerResult:
        flow = state.flow if state.flow and state.flow.name == FLOW else None
        was_verified = state.verified
        ident = identify(self.verifier, state, entities, client_id, now, customer_token,
                         flow.slot("order_id") if flow else None)
        state = ident.state
        if ident.ask == "locked_out":
            return self._result("locked_out", state, **ident.data)
        if ident.ask == "token_rejected":
            return self._result("token_rejected", state)
        if ident.ask == "ask_order_and_details":
            return self._result("ask_order_number", self._with_flow(state, (), now))
        if ident.ask == "ask_verification":
            return self._result("ask_verification", self._with_flow(state, (("order_id", ident.order_id),), now),
                                order_id=ident.order_id)
        if ident.ask == "verify_failed":  # the order number is kept: the next try needs only the email or zip
            return self._result("verify_failed", self._with_flow(state, (("order_id", ident.order_id),), now))
        if customer_token and was_verified:  # the widget sends it every turn: only a new customer matters
            other = self.verifier.peek_token(customer_token, now)
            if other.valid and other.customer_id != state.customer_id:  # one customer per session
                return self._result("other_customer", dataclasses.replace(state, flow=None))
        if ident.order_id:
            return self._own_order(state, ident.order_id, client_id, now)
        return self._by_reference(state, text, flow, now)

    # ---- verified shopper ---------------------------------------------------------------------
    def _own_order(self, state: SessionState, order_id: str, client_id: str, now: datetime) -> HandlerResult:
        if order_id in {o.id for o in self.store.orders_of(state.customer_id or "")}:
            return self._answer(state, order_id, now)
        # the same reply whether the order exists or not; counted, so a verified session cannot probe
        self.verifier.record_failure(state.session_id, client_id, now, reason="not_customer_order")
        failed = dataclasses.replace(self._failed(state), flow=None)
        lock = self.verifier.lockout(state.session_id, client_id, now)
        return self._locked(failed, lock, now) if lock else self._result("not_your_order", failed,
                                                                           order_id=order_id)

    def _by_reference(self, state: SessionState, text: str, flow: Flow | None, now: datetime) -> HandlerResult:
        orders = self.store.orders_of(state.customer_id or "")
        if not orders:
            return self._result("no_orders", dataclasses.replace(state, flow=None))
        shown = [o for oid in (flow.slot("choices") or ()) for o in orders if o.id == oid] if flow else []
        ref = parse_reference(text, in_list=bool(shown))
        matches = resolve(ref, shown, self.min_similarity) if shown else None
        if not matches:
            matches = resolve(dataclasses.replace(ref, ordinal=None), orders, self.min_similarity)
        if matches is None:  # no reference at all: the only order, or the recent ones to pick from
            return self._answer(state, orders[0].id, now) if len(orders) == 1 else \
                self._pick(state, orders[:MAX_LISTED], "pick_order", now)
        if len(matches) == 1:
            return self._answer(state, matches[0].id, now)
        if not matches:
            return self._pick(state, orders[:MAX_LISTED], "pick_order", now)
        return self._pick(state, matches[:MAX_LISTED], "pick_matching_order", now)

    def _answer(self, state: SessionState, order_id: str, now: datetime) -> HandlerResult:
        order = self.store.get_order(order_id)
        if order is None or order.customer_id != state.customer_id:  # defensive: never another's order
            return self._result("not_your_order", dataclasses.replace(state, flow=None), order_id=order_id)
        return HandlerResult(order_facts(order, now), dataclasses.replace(state, flow=None))

    def _pick(self, state: SessionState, orders: list[OrderView], kind: str, now: datetime) -> HandlerResult:
        ids = tuple(o.id for o in orders)
        facts = Facts(kind=kind, route=ROUTE, data={"orders_text": "; ".join(order_summary(o) for o in orders)},
                      must_say=ids, choices=ids, use_model=False)
        return HandlerResult(facts, self._with_flow(state, (("choices", ids),), now))

    # ---- helpers ------------------------------------------------------------------------------
    def _locked(self, state: SessionState, lock: Lockout, now: datetime) -> HandlerResult:
        locked = dataclasses.replace(state, flow=None, locked_until=lock.until.isoformat())
        return self._result("locked_out", locked, minutes=lock.minutes_left(now))

    @staticmethod
    def _failed(state: SessionState) -> SessionState:
        return dataclasses.replace(state, failed_verifications=state.failed_verifications + 1)

    @staticmethod
    def _with_flow(state: SessionState, slots: tuple, now: datetime) -> SessionState:
        return dataclasses.replace(state, flow=Flow(FLOW, slots, now.isoformat()))

    @staticmethod
    def _result(kind: str, state: SessionState, **data: object) -> HandlerResult:
        """A fixed reply (no model): verification prompts, refusals, lockout."""
        must = (str(data["order_id"]),) if "order_id" in data else ()
        return HandlerResult(Facts(kind=kind, route=ROUTE, data=dict(data), must_say=must, use_model=False), state)
