"""The cancellation flow (issue 5): only orders that have not shipped; a shipped order gets the return path.

verify -> order (asked when several; the cancellable ones listed) -> decision naming the clause
(C-BEFORE-SHIPPING, or C-SHIPPED: refused, return offered) -> summary with the refund -> "yes" ->
``cancel_order`` (status cancelled, payments refunded or voided, an audit row; one transaction,
idempotent). Nothing is written without the explicit yes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from app.flow_base import OrderFlow, money, pressure_policy, request_key
from app.flow_parse import no, wants_other_order, yes
from app.orders import STATUS_TEXT
from app.policy import can_cancel
from app.schema import Action, Entities, Flow, HandlerResult, SessionState
from app.store import OrderView
from app.writes import WriteRequest

ROUTE = "cancel_order"
FLOW = "cancel"


class CancelHandler(OrderFlow):
    names = (FLOW,)
    route = ROUTE

    def handle(self, text: str, entities: Entities, state: SessionState, client_id: str, now: datetime,
               customer_token: str | None = None) -> HandlerResult:
        turn = self.open_turn(FLOW, text, entities, state, client_id, now, customer_token, self._policy_text)
        if isinstance(turn, HandlerResult):
            return turn
        flow, slots, state, ident = turn.flow, turn.slots, turn.state, turn.ident
        step = slots.get("step")
        if step in ("confirm", "offer") and no(text):
            return self.result("flow_aborted", state, None, {"task": FLOW})
        if step == "confirm" and yes(text):
            return self._write(slots, state, flow, now)

        named = entities.order_ids[0] if entities.order_ids else None
        if named and named != slots.get("order"):
            slots = {"order": named, "step": "order"}
        elif wants_other_order(text) and slots.get("order"):
            slots = {"step": "order", "exclude": slots["order"]}
        elif step == "verify" and ident.order_id:
            slots = {**slots, "order": ident.order_id}
        if not slots.get("order"):
            orders = [o for o in self.store.orders_of(state.customer_id or "") if o.id != slots.get("exclude")]
            if not orders:
                return self.result("no_orders", state, None)
            matches = self.choose_order(text, orders, list(slots.get("shown") or ()))
            if matches is None:
                open_orders = [o for o in orders if can_cancel(self.policy, o.status).allowed]
                matches = open_orders if len(open_orders) == 1 else (open_orders or orders)
                if len(matches) > 1 or not open_orders:
                    return self.pick_order("cancel_pick_order", state, FLOW, slots, matches, now, flow)
            if len(matches) != 1:
                return self.pick_order("cancel_pick_order", state, FLOW, slots, matches or orders, now, flow)
            slots = {**slots, "order": matches[0].id}
        order = self.own_order(state, slots["order"], client_id, now)
        if order is None:
            return self.not_your_order(state, ROUTE, slots["order"])
        return self._decide(order, state, slots, now, flow)

    def _policy_text(self, _slots: dict[str, Any]) -> str:
        return pressure_policy(self.policy, self.policy.cancel_clause, self.policy.shipped_clause)

    def _decide(self, order: OrderView, state: SessionState, slots: dict[str, Any], now: datetime,
                flow: Flow | None) -> HandlerResult:
        data: dict[str, Any] = {"order_id": order.id, "status_text": STATUS_TEXT.get(order.status, order.status)}
        must = (order.id,)
        if order.status == "cancelled":
            return self.result("cancel_already", state, None, data, must_say=must)
        decision = can_cancel(self.policy, order.status)
        if not decision.allowed:
            data.update(policy=self.policy.text(decision.clause), clause=decision.clause)
            if order.status == "delivered":  # the return path, right away
                offer = Flow("return", (("step", "order"), ("order", order.id)), now.isoformat(), now.isoformat())
                return self.result("cancel_refused_delivered", state, offer, data, must_say=must,
                                   choices=("Yes, start a return", "No, thanks"))
            if order.status in self.policy.shipped_statuses:
                _days, clause = self.policy.shortest_window(i.category for i in order.items)
                data.update(return_policy=self.policy.text(clause), return_clause=clause)
                return self.result("cancel_refused_shipped", state, None, data, must_say=must,
                                   choices=("Track this order", "Return an item"))
            return self.result("cancel_refused_other", state, None, data, must_say=must)
        paid = sum((p.amount for p in order.payments if p.status == "captured"), Decimal("0.00"))
        data.update(items_text=", ".join(f"{i.qty} x {i.name}" if i.qty > 1 else i.name for i in order.items),
                    refund=money(paid), charged=bool(paid), method=order.payment_method or "your card",
                    policy=self.policy.text(decision.clause), clause=decision.clause)
        keep = {**slots, "step": "confirm", "refund": str(paid), "clauses": [decision.clause]}
        return self.result("cancel_summary", state, self.flow(FLOW, keep, now, flow), data, must_say=must,
                           choices=("Yes, cancel it", "No, keep it"))

    def _write(self, slots: dict[str, Any], state: SessionState, flow: Flow | None, now: datetime) -> HandlerResult:
        assert flow is not None
        order = self.store.get_order(slots["order"])
        if order is None or order.customer_id != state.customer_id:
            return self.not_your_order(state, ROUTE, slots["order"])
        req = WriteRequest(key=request_key(state.session_id, flow, order.id), session_id=state.session_id,
                           customer_id=state.customer_id or "", order_id=order.id,
                           clauses=tuple(slots.get("clauses") or ()), refund_amount=Decimal(slots.get("refund", "0")),
                           refund_method=order.payment_method)
        done = self.writer.cancel_order(req, now, self.policy.cancel_statuses)
        if not done.ok:
            if done.problem == "not_cancellable":  # it shipped between the summary and the yes
                fresh = self.store.get_order(order.id)
                return self._decide(fresh or order, state, {"order": order.id}, now, None)
            return self.not_your_order(state, ROUTE, order.id)
        refund = Decimal(slots.get("refund", "0"))
        data = {"order_id": order.id, "refund": money(refund), "charged": bool(refund),
                "method": order.payment_method or "your card"}
        return self.result("order_cancelled", state, None, data, must_say=(order.id,),
                           actions=(Action("cancel_order", (("order", order.id), ("refund", float(refund)))),))
