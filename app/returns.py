"""The return and exchange flows (issue 5), the policy enforced in code.

return:   verify -> order (asked when several) -> items and quantities -> reason -> condition ->
          a decision per item naming its clause -> summary (refund amount and method) -> "yes" ->
          ``create_return`` (RMA id, label instructions, refund timing).
exchange: the same product in another size or colour, only when in stock (else a return is
          offered): verify -> order -> item -> variant -> condition -> summary -> "yes" -> ``create_exchange``.

Each turn reads what the message says into the flow's slots (an order number, items, a quantity, a
reason, the condition, a size) and then asks for the first thing still missing, so corrections
("actually the other order", "two, not one") work at any step: they change a slot and the flow
re-asks or re-summarises. Nothing is written before the explicit yes, and the write itself checks
again (``app.writes``).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.flow_base import OrderFlow, money, pressure_policy, request_key
from app.flow_parse import (
    Line,
    condition_ok,
    corrected_quantity,
    damaged,
    no,
    pick_lines,
    pick_variant,
    wants_other_order,
    yes,
)
from app.orders import STATUS_TEXT
from app.policy import ItemDecision, evaluate_return_item, refund_total
from app.schema import Action, Entities, Flow, HandlerResult, SessionState
from app.store import ItemView, OrderView, VariantView
from app.writes import ReturnLine, WriteRequest

ROUTE = "returns"
RETURN, EXCHANGE = "return", "exchange"
SHIPPED_NOT_DELIVERED = ("shipped", "in_transit", "delayed")
NOT_SHIPPED = ("pending", "processing")
REASON_CHOICES = ("It doesn't fit", "I changed my mind", "It arrived damaged or defective", "Wrong item sent")
_US_ZIP = re.compile(r"\d{5}(?:-\d{4})?")
_RESET_ON_NEW_ORDER = ("lines", "reason", "damaged", "condition", "replacement", "shown")


class ReturnsHandler(OrderFlow):
    names = (RETURN, EXCHANGE)
    route = ROUTE

    def handle(self, intent: str, text: str, entities: Entities, state: SessionState, client_id: str,
               now: datetime, customer_token: str | None = None) -> HandlerResult:
        turn = self.open_turn(EXCHANGE if intent == "returns.exchange" else RETURN, text, entities, state, client_id,
                              now, customer_token, self._policy_text)
        if isinstance(turn, HandlerResult):
            return turn
        name, flow, slots, state, ident = turn.name, turn.flow, turn.slots, turn.state, turn.ident
        step = slots.get("step")
        fresh_verification = step == "verify"

        if step == "offer_return":  # an exchange out of stock: a return instead?
            if yes(text):
                name, slots = RETURN, {**slots, "replacement": None, "step": "items"}
                flow = None  # a new flow: a new confirmation key
            elif no(text):
                return self.result("flow_aborted", state, None, {"task": EXCHANGE})
        if step == "confirm" and yes(text):
            return self._write(name, slots, state, flow, now)
        if step == "confirm" and no(text):
            return self.result("flow_aborted", state, None, {"task": name})

        # -- which order ---------------------------------------------------------------------------
        named = entities.order_ids[0] if entities.order_ids else None
        if named and named != slots.get("order"):
            slots = self._new_order(slots, named)
        elif wants_other_order(text) and slots.get("order"):
            slots = {**self._new_order(slots, None), "exclude": slots["order"]}
        if fresh_verification and ident.order_id:
            slots["order"] = ident.order_id
        if not slots.get("order"):
            orders = [o for o in self.store.orders_of(state.customer_id or "") if o.id != slots.get("exclude")]
            if not orders:
                return self.result("no_orders", state, None)
            matches = self.choose_order(text, orders, list(slots.get("shown") or ()))
            if matches is None and len(orders) == 1:
                matches = orders
            if not matches or len(matches) > 1:
                return self.pick_order("return_pick_order", state, name, slots, matches or orders, now, flow)
            slots = {**slots, "order": matches[0].id}
        order = self.own_order(state, slots["order"], client_id, now)
        if order is None:
            return self.not_your_order(state, ROUTE, slots["order"])
        blocked = self._order_blocked(order, name, state, now)
        if blocked is not None:
            return blocked

        # -- which items -----------------------------------------------------------------------------
        lines = self._lines(order)
        if not any(line.available for line in lines):
            return self._already_returned(order, state, [i.name for i in order.items])
        picked = pick_lines(text, lines, 0.6)
        if picked:
            slots["lines"] = sorted(picked.items())
        elif slots.get("lines") and len(slots["lines"]) == 1 and step in ("reason", "condition", "confirm"):
            qty = corrected_quantity(text)  # "two, not one"
            if qty is not None:
                sku = slots["lines"][0][0]
                slots["lines"] = [(sku, min(qty, next(line.available for line in lines if line.sku == sku)))]
                picked = dict(slots["lines"])
        if not slots.get("lines"):
            open_lines = [line for line in lines if line.available]
            if len(open_lines) == 1 and open_lines[0].available == 1:
                slots["lines"] = [(open_lines[0].sku, 1)]
            else:
                gone = self._named_returned(text, order, lines)
                if gone:
                    return self._already_returned(order, state, gone)
                return self._ask_items(name, state, slots, order, lines, now, flow)
        # the message answers the question asked last turn only if it was not a correction
        correction = bool(picked) or bool(named)
        if damaged(text):
            slots = {**slots, "reason": text.strip()[:200], "damaged": True}
        if name == EXCHANGE:
            return self._exchange(text, state, slots, order, lines, now, flow,
                                  answers_condition=step == "condition" and not correction)
        if not slots.get("reason"):
            if step == "reason" and not correction:
                slots["reason"] = text.strip()[:200]
            else:
                return self.result("return_ask_reason", state, self.flow(name, {**slots, "step": "reason"}, now, flow),
                                   {"order_id": order.id}, choices=REASON_CHOICES)
        return self._condition_then_summary(name, text, state, slots, order, now, flow,
                                            answers_condition=step == "condition" and not correction)

    # ---- steps ------------------------------------------------------------------------------------
    def _order_blocked(self, order: OrderView, name: str, state: SessionState, now: datetime) -> HandlerResult | None:
        """Orders that cannot be returned at all: not shipped (cancel instead), on the way, cancelled."""
        data = {"order_id": order.id, "status_text": STATUS_TEXT.get(order.status, order.status), "task": name}
        must = (order.id,)
        if order.status in NOT_SHIPPED:
            offer = Flow("cancel", (("step", "offer"), ("order", order.id)), now.isoformat(), now.isoformat())
            return self.result("return_not_shipped", state, offer,
                               {**data, "policy": self.policy.text(self.policy.cancel_clause),
                                "clause": self.policy.cancel_clause}, must_say=must,
                               choices=("Yes, cancel it", "No, keep it"))
        if order.status in SHIPPED_NOT_DELIVERED:
            days, clause = self.policy.shortest_window(i.category for i in order.items)
            return self.result("return_not_delivered", state, None,
                               {**data, "policy": self.policy.text(clause), "clause": clause, "days": days},
                               must_say=must)
        if order.status == "cancelled":
            return self.result("return_order_cancelled", state, None, data, must_say=must)
        return None

    def _ask_items(self, name: str, state: SessionState, slots: dict[str, Any], order: OrderView,
                   lines: list[Line], now: datetime, flow: Flow | None) -> HandlerResult:
        open_lines = [line for line in lines if line.available]
        text = "; ".join(f"{line.name}" + (f" (x{line.available})" if line.available > 1 else "")
                         for line in open_lines)
        kind = "exchange_pick_item" if name == EXCHANGE else "return_pick_items"
        choices = tuple(line.name for line in open_lines) + (("All of them",) if name == RETURN else ())
        return self.result(kind, state, self.flow(name, {**slots, "step": "items"}, now, flow),
                           {"order_id": order.id, "items_text": text}, must_say=(order.id,), choices=choices)

    def _exchange(self, text: str, state: SessionState, slots: dict[str, Any], order: OrderView, lines: list[Line],
                  now: datetime, flow: Flow | None, answers_condition: bool) -> HandlerResult:
        if len(slots["lines"]) > 1:
            return self._ask_items(EXCHANGE, state, {**slots, "lines": []}, order, lines, now, flow)
        sku, qty = slots["lines"][0]
        item = self._item(order, sku)
        variants = self.store.variants_of(sku)
        current = next((v for v in variants if v.sku == sku), None)
        if current is None:  # not in the catalogue any more: nothing to exchange it for
            return self._offer_return(state, slots, item, "", now, flow)
        wanted = pick_variant(text, current.attributes, [(v.sku, v.attributes) for v in variants])
        if wanted:
            slots["replacement"] = wanted
        if not slots.get("replacement"):
            return self.result("exchange_pick_variant", state,
                               self.flow(EXCHANGE, {**slots, "step": "variant"}, now, flow),
                               {"item": item.name, "options": self._in_stock(variants, sku),
                                "unknown": slots.get("step") == "variant"})
        replacement = next(v for v in variants if v.sku == slots["replacement"])
        if replacement.stock < qty:
            return self._offer_return(state, slots, item, replacement.name, now, flow)
        if not slots.get("reason"):
            slots["reason"] = f"exchange for {replacement.name}"
        return self._condition_then_summary(EXCHANGE, text, state, slots, order, now, flow,
                                            answers_condition=answers_condition and not wanted)

    def _offer_return(self, state: SessionState, slots: dict[str, Any], item: ItemView, wanted: str, now: datetime,
                      flow: Flow | None) -> HandlerResult:
        slots = {**slots, "step": "offer_return", "replacement": None}
        return self.result("exchange_out_of_stock", state, self.flow(EXCHANGE, slots, now, flow),
                           {"item": item.name, "wanted": wanted, "clause": self.policy.exchange_clause,
                            "policy": self.policy.text(self.policy.exchange_clause)},
                           choices=("Yes, return it", "No, thanks"))

    def _condition_then_summary(self, name: str, text: str, state: SessionState, slots: dict[str, Any],
                                order: OrderView, now: datetime, flow: Flow | None,
                                answers_condition: bool) -> HandlerResult:
        if not slots.get("damaged") and slots.get("condition") is None:
            answer = condition_ok(text) if answers_condition else None
            if answer is None:
                hygiene = any(self._item(order, sku).category in self.policy.hygiene_categories
                              for sku, _ in slots["lines"])
                return self.result("return_ask_condition", state,
                                   self.flow(name, {**slots, "step": "condition"}, now, flow),
                                   {"hygiene": hygiene}, choices=("Yes", "No"))
            slots["condition"] = answer
        return self._summary(name, state, slots, order, now, flow)

    def _summary(self, name: str, state: SessionState, slots: dict[str, Any], order: OrderView, now: datetime,
                 flow: Flow | None) -> HandlerResult:
        decisions = self._decide(slots, order, now)
        ok = [d for d in decisions if d.eligible]
        refused = [d for d in decisions if not d.eligible]
        refused_text = " ".join(f"{d.name}: {self.policy.text(d.clause)} ({d.clause})" for d in refused)
        if not ok:
            offer = Flow("handoff_offer", (), now.isoformat(), now.isoformat())
            return self.result("return_refused", state, offer,
                               {"order_id": order.id, "task": name, "refused_text": refused_text,
                                "clauses": [d.clause for d in refused]},
                               must_say=(order.id,), handoff=True, choices=("Yes, connect me", "No, thanks"))
        international = not _US_ZIP.fullmatch(order.shipping_zip or "94110")
        refund, shipping_clause = refund_total(self.policy, decisions, international)
        lo, hi, timing_clause = self.policy.refund_timing
        data: dict[str, Any] = {
            "order_id": order.id, "task": name,
            "items_text": "; ".join(f"{d.qty} x {d.name}" + (f" ({money(d.refund_amount)})" if name == RETURN else "")
                                    for d in ok),
            "refused_text": refused_text, "refund": money(refund), "method": order.payment_method or "your card",
            "timing": f"{lo}-{hi} business days after it arrives at our warehouse",
            "shipping": self.policy.text(shipping_clause), "clauses": [d.clause for d in decisions],
        }
        keep = {**slots, "step": "confirm", "ok": [[d.sku, d.qty] for d in ok], "refund": str(refund),
                "clauses": sorted({d.clause for d in decisions} | {shipping_clause, timing_clause})}
        if name == EXCHANGE:
            replacement = next(v for v in self.store.variants_of(ok[0].sku) if v.sku == slots["replacement"])
            data.update(replacement=replacement.name, exchange_policy=self.policy.text(self.policy.exchange_clause))
            keep["clauses"] = sorted({*keep["clauses"], self.policy.exchange_clause})
            return self.result("exchange_summary", state, self.flow(EXCHANGE, keep, now, flow), data,
                               must_say=(order.id,), choices=("Yes", "No"))
        return self.result("return_summary", state, self.flow(RETURN, keep, now, flow), data,
                           must_say=(order.id, money(refund)), choices=("Yes", "No"))

    def _write(self, name: str, slots: dict[str, Any], state: SessionState, flow: Flow | None,
               now: datetime) -> HandlerResult:
        assert flow is not None
        order = self.store.get_order(slots["order"])
        if order is None or order.customer_id != state.customer_id:
            return self.not_your_order(state, ROUTE, slots["order"])
        replacement = slots.get("replacement") if name == EXCHANGE else None
        lines = tuple(ReturnLine(sku, int(qty), replacement) for sku, qty in slots["ok"])
        refund = Decimal(slots["refund"]) if name == RETURN else Decimal("0.00")
        instructions = self._instructions(order)
        key = request_key(state.session_id, flow, order.id, sorted(map(tuple, slots["ok"])), replacement)
        req = WriteRequest(key=key, session_id=state.session_id, customer_id=state.customer_id or "",
                           order_id=order.id, clauses=tuple(slots.get("clauses") or ()), lines=lines,
                           refund_amount=refund, refund_method=order.payment_method,
                           reason=str(slots.get("reason") or ""), instructions=instructions)
        done = self.writer.create_return(req, now, kind=name)
        if not done.ok:
            offer = Flow("handoff_offer", (), now.isoformat(), now.isoformat())
            return self.result("flow_write_failed", state, offer, {"problem": done.problem, "task": name},
                               handoff=True, choices=("Yes, connect me", "No, thanks"))
        items = [f"{qty} x {self._item(order, sku).name}" for sku, qty in slots["ok"]]
        lo, hi, _ = self.policy.refund_timing
        data = {"rma": done.object_id, "order_id": order.id, "items_text": "; ".join(items),
                "instructions": instructions, "refund": money(refund), "method": order.payment_method or "your card",
                "timing": f"{lo}-{hi} business days after it arrives at our warehouse"}
        args: tuple[tuple[str, Any], ...] = (("order", order.id), ("rma", done.object_id),
                                             ("items", [{"sku": s, "qty": int(q)} for s, q in slots["ok"]]))
        if name == EXCHANGE:
            variant = next(v for v in self.store.variants_of(lines[0].sku) if v.sku == replacement)
            data["replacement"] = variant.name
            args += (("replacement", replacement),)
            return self.result("exchange_created", state, None, data, must_say=(done.object_id,),
                               actions=(Action("create_exchange", args),))
        args += (("refund", float(refund)),)
        return self.result("return_created", state, None, data, must_say=(done.object_id, money(refund)),
                           actions=(Action("create_return", args),))

    # ---- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _new_order(slots: dict[str, Any], order_id: str | None) -> dict[str, Any]:
        kept = {k: v for k, v in slots.items() if k not in _RESET_ON_NEW_ORDER and k != "exclude"}
        return {**kept, "order": order_id, "step": "order"}

    @staticmethod
    def _lines(order: OrderView) -> list[Line]:
        returned: dict[str, int] = {}
        for ret in order.returns:
            if ret.status != "rejected":
                for sku, qty in ret.items:
                    returned[sku] = returned.get(sku, 0) + qty
        merged: dict[str, Line] = {}
        for item in order.items:
            prev = merged.get(item.sku)
            merged[item.sku] = Line(item.sku, item.name, (prev.available if prev else 0) + item.qty)
        return [Line(line.sku, line.name, max(0, line.available - returned.get(line.sku, 0)))
                for line in merged.values()]

    @staticmethod
    def _named_returned(text: str, order: OrderView, lines: list[Line]) -> list[str]:
        gone = [Line(line.sku, line.name, 1) for line in lines if not line.available]
        picked = pick_lines(text, gone, 0.6) if gone else None
        return [line.name for line in gone if picked and line.sku in picked]

    def _already_returned(self, order: OrderView, state: SessionState, names: list[str]) -> HandlerResult:
        rmas = ", ".join(f"{r.id} ({r.status})" for r in order.returns) or "an earlier return"
        return self.result("return_already_returned", state, None,
                           {"order_id": order.id, "items_text": ", ".join(names), "rmas": rmas},
                           must_say=(order.id,))

    @staticmethod
    def _item(order: OrderView, sku: str) -> ItemView:
        return next(i for i in order.items if i.sku == sku)

    @staticmethod
    def _in_stock(variants: list[VariantView], current: str) -> str:
        options = [", ".join(v.attributes.values()) for v in variants if v.sku != current and v.stock > 0]
        return "; ".join(options) or "none right now"

    def _decide(self, slots: dict[str, Any], order: OrderView, now: datetime) -> list[ItemDecision]:
        condition = slots.get("condition")
        decisions = []
        for sku, qty in slots["lines"]:
            item = self._item(order, sku)
            hygiene = item.category in self.policy.hygiene_categories
            decisions.append(evaluate_return_item(
                self.policy, sku=sku, name=item.name, category=item.category, final_sale=item.final_sale,
                qty=int(qty), unit_price=item.price, delivered_at=order.delivered_at, today=now.date(),
                opened=(condition is False) if hygiene else None, condition_ok=condition,
                damaged=bool(slots.get("damaged"))))
        return decisions

    def _instructions(self, order: OrderView) -> str:
        if _US_ZIP.fullmatch(order.shipping_zip or "94110"):
            return self.policy.text(self.policy.us_shipping[1])
        return self.policy.text(self.policy.intl_shipping[1])

    def _policy_text(self, slots: dict[str, Any]) -> str:
        return pressure_policy(self.policy, *(slots.get("clauses") or ()))

