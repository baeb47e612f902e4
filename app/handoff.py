"""Human handoff: offer a person; on the shopper's explicit yes, open one ticket (idempotent)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from app.pii import mask
from app.schema import Action, Facts, Flow, HandlerResult, SessionState
from app.store import ShopStore
from intents.entities import is_affirmative, is_negative

ROUTE = "human_handoff"


class HandoffHandler:
    def __init__(self, store: ShopStore) -> None:
        self.store = store

    def handle(self, text: str, state: SessionState, now: datetime) -> HandlerResult:
        offered = state.flow is not None and state.flow.name == "handoff_offer"
        if offered and is_affirmative(text):
            summary = mask(" | ".join(t for role, t in state.history[-6:] if role == "user"))[:1000]
            ticket_id, _created = self.store.open_handoff_ticket(state.session_id, state.customer_id, summary, now)
            facts = Facts(kind="handoff_opened", route=ROUTE, data={"ticket_id": ticket_id}, must_say=(ticket_id,),
                          actions=(Action("open_handoff_ticket", (("ticket", ticket_id),)),), handoff=True)
            return HandlerResult(facts, dataclasses.replace(state, flow=None))
        if offered and is_negative(text):
            return HandlerResult(Facts(kind="handoff_declined", route=ROUTE), dataclasses.replace(state, flow=None))
        facts = Facts(kind="handoff_offer", route=ROUTE, handoff=True, choices=("Yes, connect me", "No, thanks"),
                      use_model=False)
        return HandlerResult(facts, dataclasses.replace(state, flow=Flow("handoff_offer", (), now.isoformat())))
