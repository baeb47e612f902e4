"""What the order-action flows (return, exchange, refund status, cancel) share.

A flow's state is a ``Flow`` in the session: its name and slots (``step``, ``order``, ``lines``, ...),
JSON-safe values only. Handlers are pure over (state, message, store): they read, decide with
``app.policy``, and return ``HandlerResult(Facts, SessionState)``; the one write a flow makes goes
through ``app.writes`` on the shopper's explicit "yes". Every reply of these flows is a template
(``use_model=False``): they state policy and money, where a shop is liable for every word.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.config import Settings
from app.flow_parse import is_abort, is_pressure
from app.identify import Identity, identify
from app.order_match import parse_reference, resolve
from app.orders import money, order_summary
from app.policy import Policy
from app.schema import Entities, Facts, Flow, HandlerResult, SessionState
from app.store import OrderView, ShopStore
from app.verification import Verifier
from app.writes import FlowWriter

MAX_LISTED = 5
HANDOFF_CHOICES = ("Yes, connect me", "No, thanks")


def request_key(session_id: str, flow: Flow, *parts: object) -> str:
    """One key per confirmation: the same session, flow and confirmed details give the same key."""
    raw = "|".join([session_id, flow.name, flow.started_at, *map(str, parts)])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class FlowTurn:
    """A turn of a flow once the checks every turn makes first have passed: the shopper is verified."""

    name: str  # the flow's name (the active one, or the one this turn starts)
    flow: Flow | None  # the active flow of this handler, if any
    slots: dict[str, Any]
    state: SessionState  # verified
    ident: Identity


class OrderFlow:
    """Base of the flow handlers: identity, order choice, pressure, abort, and building results."""

    names: tuple[str, ...] = ()  # the flow names this handler owns
    route = ""

    def __init__(self, store: ShopStore, writer: FlowWriter, settings: Settings, policy: Policy) -> None:
        self.store = store
        self.writer = writer
        self.policy = policy
        self.verifier = Verifier(store, settings)
        self.min_similarity = settings.item_match_min_similarity

    # ---- results ------------------------------------------------------------------------------
    def result(self, kind: str, state: SessionState, flow: Flow | None, data: dict[str, Any] | None = None,
               **facts: Any) -> HandlerResult:
        """A template reply (no model) and the session with ``flow`` (None: the flow ends)."""
        return HandlerResult(Facts(kind=kind, route=self.route, data=dict(data or {}), use_model=False, **facts),
                             dataclasses.replace(state, flow=flow))

    @staticmethod
    def flow(name: str, slots: dict[str, Any], now: datetime, before: Flow | None) -> Flow:
        started = before.started_at if before is not None and before.name == name else now.isoformat()
        return Flow(name, tuple(slots.items()), started, now.isoformat())

    # ---- the checks every turn of a flow makes first --------------------------------------------
    def open_turn(self, new_name: str, text: str, entities: Entities, state: SessionState, client_id: str,
                  now: datetime, customer_token: str | None,
                  policy_text: Callable[[dict[str, Any]], str]) -> FlowTurn | HandlerResult:
        """Pressure and abort first, then identity; a HandlerResult when the turn ends there."""
        flow = state.flow if state.flow is not None and state.flow.name in self.names else None
        name = flow.name if flow else new_name
        slots = flow_slots(flow)
        stop = self.interrupt(text, state, flow, now, policy_text(slots))
        if stop is not None:
            return stop
        ident = self.identity(state, entities, client_id, now, customer_token, slots)
        if ident.ask:
            return self.ask_identity(ident, name, slots, now, flow)
        return FlowTurn(name, flow, slots, ident.state, ident)

    def interrupt(self, text: str, state: SessionState, flow: Flow | None, now: datetime,
                  policy_text: str) -> HandlerResult | None:
        """A shopper who pushes gets the policy and a human offer; "never mind" ends the flow."""
        if is_pressure(text):
            offer = Flow("handoff_offer", (), now.isoformat(), now.isoformat())
            return self.result("policy_pressure", state, offer, {"policy": policy_text}, handoff=True,
                               choices=HANDOFF_CHOICES)
        if flow is not None and is_abort(text):
            return self.result("flow_aborted", state, None, {"task": flow.name})
        return None

    def identity(self, state: SessionState, entities: Entities, client_id: str, now: datetime,
                 customer_token: str | None, slots: dict[str, Any]) -> Identity:
        return identify(self.verifier, state, entities, client_id, now, customer_token, slots.get("order"))

    def ask_identity(self, ident: Identity, name: str, slots: dict[str, Any], now: datetime,
                     before: Flow | None) -> HandlerResult:
        slots = {**slots, "step": "verify", "order": ident.order_id}
        flow = None if ident.ask == "locked_out" else self.flow(name, slots, now, before)
        data = {**ident.data, "task": name}
        must = (str(data["order_id"]),) if "order_id" in data else ()
        return self.result(ident.ask or "", ident.state, flow, data, must_say=must)

    # ---- which order ----------------------------------------------------------------------------
    def own_order(self, state: SessionState, order_id: str, client_id: str, now: datetime) -> OrderView | None:
        """The order when it is the verified customer's; else None, counted like a failed lookup."""
        order = self.store.get_order(order_id)
        if order is not None and order.customer_id == state.customer_id:
            return order
        self.verifier.record_failure(state.session_id, client_id, now, reason="not_customer_order")
        return None

    def choose_order(self, text: str, orders: list[OrderView], shown: list[str]) -> list[OrderView] | None:
        """The orders a message can mean among ``orders`` (the list shown first); None: it names none."""
        listed = [o for oid in shown for o in orders if o.id == oid]
        ref = parse_reference(text, in_list=bool(listed))
        matches = resolve(ref, listed, self.min_similarity) if listed else None
        if not matches:
            matches = resolve(dataclasses.replace(ref, ordinal=None), orders, self.min_similarity)
        return matches

    def pick_order(self, kind: str, state: SessionState, name: str, slots: dict[str, Any], orders: list[OrderView],
                   now: datetime, before: Flow | None) -> HandlerResult:
        listed = orders[:MAX_LISTED]
        ids = [o.id for o in listed]
        slots = {**slots, "step": "order", "shown": ids}
        return self.result(kind, state, self.flow(name, slots, now, before),
                           {"task": name, "orders_text": "; ".join(order_summary(o) for o in listed)},
                           must_say=tuple(ids), choices=tuple(ids))

    @staticmethod
    def not_your_order(state: SessionState, route: str, order_id: str) -> HandlerResult:
        failed = dataclasses.replace(state, flow=None, failed_verifications=state.failed_verifications + 1)
        return HandlerResult(Facts(kind="not_your_order", route=route, data={"order_id": order_id},
                                   must_say=(order_id,), use_model=False), failed)


def flow_slots(flow: Flow | None) -> dict[str, Any]:
    return dict(flow.slots) if flow is not None else {}


def pressure_policy(policy: Policy, *clauses: str) -> str:
    """The policy sentences a pushing shopper is given: the clauses in play, else the core ones."""
    chosen = [c for c in clauses if c] or [policy.default_window[1], policy.condition_clause,
                                             policy.refund_method_clause]
    return " ".join(f"{policy.text(c)} ({c})" for c in dict.fromkeys(chosen))


__all__ = ["HANDOFF_CHOICES", "OrderFlow", "flow_slots", "money", "pressure_policy", "request_key"]
