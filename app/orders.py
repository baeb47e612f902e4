"""Order status with identity verification (design.md section 4). Pure over (state, message, store).

- Order data only for a verified shopper: order number + the order's email or billing zip.
- One customer per session; another customer's order gets nothing about it.
- An unverified shopper never learns whether an order number exists: a wrong email and an unknown
  order number get the same reply, and both count as a failed attempt.
- Lockout after ``max_failed_verifications`` failures per session or per client address.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from app.config import Settings
from app.schema import Entities, Facts, Flow, HandlerResult, SessionState
from app.store import OrderView, ShopStore

ROUTE = "order_status"
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
    "cancelled": "Any payment for it has been refunded to the original payment method.",
    "returned": "The return has been processed.",
}


def fmt_date(value: date | datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else ""


def order_facts(order: OrderView) -> Facts:
    status = STATUS_TEXT.get(order.status, order.status)
    items = ", ".join(f"{i.qty} x {i.name}" if i.qty > 1 else i.name for i in order.items)
    event = order.latest_event
    data = {
        "order_id": order.id,
        "status": order.status,
        "status_text": status,
        "items_text": items,
        "placed": fmt_date(order.placed_at),
        "shipped": fmt_date(order.shipped_at),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "expected": fmt_date(order.expected_delivery),
        "delivered": fmt_date(order.delivered_at),
        "latest_event": (f"{event.description}" + (f", {event.location}" if event.location else "")
                         + f" ({fmt_date(event.at)})") if event else "",
        "next_step": NEXT_STEP.get(order.status, ""),
    }
    must = [order.id, status] + ([order.tracking_number] if order.tracking_number else [])
    return Facts(kind="order_status", route=ROUTE, data=data, must_say=tuple(must))


class OrderStatusHandler:
    def __init__(self, store: ShopStore, settings: Settings) -> None:
        self.store = store
        self.max_failures = settings.max_failed_verifications
        self.lockout = timedelta(minutes=settings.lockout_minutes)

    def handle(self, state: SessionState, entities: Entities, client_id: str, now: datetime) -> HandlerResult:
        if self._locked(state, client_id, now):
            return self._result("locked_out", state, use_model=False, minutes=self.lockout.seconds // 60)

        flow_order = state.flow.slot("order_id") if state.flow and state.flow.name == "verify_order" else None
        order_id = entities.order_ids[0] if entities.order_ids else flow_order

        if order_id is None:
            if state.verified:
                return self._pick_order(state)
            return self._result("ask_order_number", self._with_flow(state, None, now), use_model=False)

        if state.verified and order_id in self._customer_order_ids(state):
            return self._answer(state, order_id)

        if not (entities.emails or entities.zips):
            return self._result("ask_verification", self._with_flow(state, order_id, now), use_model=False,
                                order_id=order_id)

        customer = self.store.customer_for_order(order_id, email=next(iter(entities.emails), None),
                                                 zip_code=next(iter(entities.zips), None))
        self.store.record_verification(state.session_id, client_id, now, success=customer is not None)
        if customer is None:
            failed = state.failed_verifications + 1
            new = dataclasses.replace(state, failed_verifications=failed,
                                      flow=Flow("verify_order", (("order_id", order_id),), now.isoformat()))
            if failed >= self.max_failures:
                new = dataclasses.replace(new, flow=None, locked_until=(now + self.lockout).isoformat())
                return self._result("locked_out", new, use_model=False, minutes=self.lockout.seconds // 60)
            return self._result("verify_failed", new, use_model=False)
        if state.customer_id not in (None, customer):
            return self._result("other_customer", dataclasses.replace(state, flow=None), use_model=False)
        verified = dataclasses.replace(state, customer_id=customer, flow=None,
                                       verified_orders=tuple(dict.fromkeys((*state.verified_orders, order_id))))
        return self._answer(verified, order_id)

    # ---- helpers ------------------------------------------------------------------------------
    def _locked(self, state: SessionState, client_id: str, now: datetime) -> bool:
        if state.locked_until and datetime.fromisoformat(state.locked_until) > now:
            return True
        return self.store.failed_verifications(client_id, now - self.lockout) >= self.max_failures

    def _customer_order_ids(self, state: SessionState) -> set[str]:
        return {o.id for o in self.store.orders_of(state.customer_id)} if state.customer_id else set()

    def _answer(self, state: SessionState, order_id: str) -> HandlerResult:
        order = self.store.get_order(order_id)
        if order is None or order.customer_id != state.customer_id:  # defensive: never another's order
            return self._result("other_customer", state, use_model=False)
        return HandlerResult(order_facts(order), dataclasses.replace(state, flow=None))

    def _pick_order(self, state: SessionState) -> HandlerResult:
        orders = self.store.orders_of(state.customer_id or "")
        if not orders:
            return self._result("no_orders", state)
        if len(orders) == 1:
            return self._answer(state, orders[0].id)
        recent = orders[:4]
        text = "; ".join(f"{o.id} ({STATUS_TEXT.get(o.status, o.status)}, placed {fmt_date(o.placed_at)})"
                         for o in recent)
        facts = Facts(kind="pick_order", route=ROUTE, data={"orders_text": text},
                      must_say=tuple(o.id for o in recent), choices=tuple(o.id for o in recent))
        return HandlerResult(facts, state)

    @staticmethod
    def _with_flow(state: SessionState, order_id: str | None, now: datetime) -> SessionState:
        slots = (("order_id", order_id),) if order_id else ()
        return dataclasses.replace(state, flow=Flow("verify_order", slots, now.isoformat()))

    @staticmethod
    def _result(kind: str, state: SessionState, use_model: bool = True, **data: object) -> HandlerResult:
        must = (str(data["order_id"]),) if "order_id" in data else ()
        return HandlerResult(Facts(kind=kind, route=ROUTE, data=dict(data), must_say=must, use_model=use_model),
                             state)
