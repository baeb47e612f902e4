"""Refund status: where the refund of an existing return stands, for the verified customer only."""

from __future__ import annotations

from datetime import datetime

from app.flow_base import OrderFlow, money, pressure_policy
from app.orders import fmt_date
from app.schema import Entities, HandlerResult, SessionState
from app.store import OrderView, ReturnView

ROUTE = "returns"
FLOW = "refund_status"
MAX_LISTED = 5


class RefundStatusHandler(OrderFlow):
    names = (FLOW,)
    route = ROUTE

    def handle(self, text: str, entities: Entities, state: SessionState, client_id: str, now: datetime,
               customer_token: str | None = None) -> HandlerResult:
        turn = self.open_turn(FLOW, text, entities, state, client_id, now, customer_token, self._policy_text)
        if isinstance(turn, HandlerResult):
            return turn
        flow, slots, state = turn.flow, turn.slots, turn.state
        orders = self.store.orders_of(state.customer_id or "")
        named = entities.order_ids[0] if entities.order_ids else (slots.get("order") if flow else None)
        if named:
            order = self.own_order(state, named, client_id, now)
            if order is None:
                return self.not_your_order(state, ROUTE, named)
            orders = [order]
        returns = [(o, r) for o in orders for r in o.returns]
        if not returns:
            return self.result("refund_none", state, None, {"order_id": named or ""},
                               must_say=(named,) if named else (), choices=("Return an item",))
        returns.sort(key=lambda pair: pair[1].created_at, reverse=True)
        lines = [self._line(o, r) for o, r in returns[:MAX_LISTED]]
        return self.result("refund_status", state, None, {"returns_text": " ".join(lines)},
                           must_say=tuple(r.id for _, r in returns[:MAX_LISTED]))

    def _policy_text(self, _slots: dict) -> str:
        return pressure_policy(self.policy, self.policy.refund_method_clause, self.policy.refund_timing[2])

    def _line(self, order: OrderView, ret: ReturnView) -> str:
        lo, hi, _ = self.policy.refund_timing
        method = ret.refund_method or order.payment_method or "the original payment method"
        what = "Exchange" if ret.kind == "exchange" else "Return"
        head = f"{what} {ret.id} for order {order.id} (created {fmt_date(ret.created_at)})"
        if ret.kind == "exchange":
            return f"{head} is {ret.status}; exchanges have no refund."
        if ret.status == "refunded":
            return f"{head}: your refund of {money(ret.refund_amount)} was issued to {method}."
        if ret.status == "received":
            return (f"{head} has arrived at our warehouse: your refund of {money(ret.refund_amount)} to {method} "
                    f"is issued within {lo}-{hi} business days of its arrival.")
        if ret.status == "rejected":
            return f"{head} was not accepted, so no refund is due; a person from our team can explain why."
        return (f"{head} is waiting for the parcel to reach our warehouse; your refund of "
                f"{money(ret.refund_amount)} to {method} is issued within {lo}-{hi} business days after it arrives.")
