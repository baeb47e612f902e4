"""The router: (prediction, entities, session) -> Route. Confidence gates and flow ownership live here.

Order of decisions:
1. an active flow keeps the turn when the message answers it (an email for verification, a yes/no
   to an offer or a summary, "never mind"); a message that clearly starts something else is a
   digression and is routed normally: in a return or cancellation, only a confident question, a
   request for a person or a greeting/thanks counts as one (answers like "they're too small" are
   free text the flow must keep); a shopper pushing for an exception goes to the policy answer;
2. a message naming an order number goes to order_status unless it asks to return, cancel or
   escalate that order (the classifier reads "SD-10492 ada@example.com" as a contact question);
3. below the confidence gate or inside the top-2 margin -> clarify with 2-3 choices; after
   ``clarify_turns_before_handoff`` unclear turns in a row -> human_handoff.
"""

from __future__ import annotations

import re

from app.config import Settings
from app.flow_parse import is_abort, is_pressure, no, yes
from app.schema import Entities, Prediction, Route, SessionState
from intents.entities import is_affirmative, is_negative

CLARIFY = "clarify"
# Routes a shopper can be offered when the router is unsure (out_of_scope and smalltalk never are).
OFFERABLE = ("order_status", "returns", "cancel_order", "faq", "human_handoff")
# Routes that act on a named order themselves; any other route with an order number is a status lookup.
ORDER_ACTION_ROUTES = ("returns", "cancel_order", "human_handoff")
# The order-action flows (issue 5) and the route whose handler owns each.
ACTION_FLOWS = {"return": "returns", "exchange": "returns", "refund_status": "returns", "cancel": "cancel_order"}
FLOW_OWNERS = {"verify_order": "order_status", "handoff_offer": "human_handoff", **ACTION_FLOWS}
_QUESTION = re.compile(r"\?|^\s*(?:what|when|where|how|why|who|which|do|does|did|can|could|is|are|will|would|"
                       r"should|may)\b", re.IGNORECASE)
_SOCIAL = ("smalltalk.greeting", "smalltalk.thanks", "smalltalk.goodbye")


class Router:
    def __init__(self, settings: Settings) -> None:
        self.min_confidence = settings.intent_confidence_min
        self.min_margin = settings.intent_margin_min
        self.clarify_limit = settings.clarify_turns_before_handoff

    def decide(self, text: str, prediction: Prediction, entities: Entities, session: SessionState) -> Route:
        ranking = prediction.route_ranking()
        top_route, top_p = ranking[0]
        margin = top_p - (ranking[1][1] if len(ranking) > 1 else 0.0)
        confident = top_p >= self.min_confidence and margin >= self.min_margin

        flow = session.flow
        if flow is not None and flow.name in ACTION_FLOWS:
            owner = ACTION_FLOWS[flow.name]
            answers = (is_abort(text) or is_pressure(text) or yes(text) or no(text)
                       or bool(entities.order_ids or entities.emails or entities.zips))
            digression = confident and top_route != owner and (
                bool(_QUESTION.search(text)) or top_route == "human_handoff"
                or (top_route == "smalltalk" and prediction.intent in _SOCIAL))
            if answers or not digression:
                return Route(owner, prediction.intent, top_p, f"answers the active {flow.name} flow")
        if flow is None and is_pressure(text):
            return Route(top_route if top_route == "cancel_order" else "returns", prediction.intent, top_p,
                         "pushes for an exception: the policy and a person")
        if flow is not None:
            if flow.name == "verify_order" and (entities.emails or entities.zips or entities.order_ids):
                return Route("order_status", prediction.intent, top_p, "answers the verification question")
            if flow.name == "handoff_offer" and (is_affirmative(text) or is_negative(text)):
                return Route("human_handoff", prediction.intent, top_p, "answers the handoff offer")
            if flow.name == "verify_order" and not (confident and top_route not in ("order_status", "smalltalk")):
                return Route("order_status", prediction.intent, top_p, "verification flow is active")

        if flow is None and (is_affirmative(text) or is_negative(text)):
            return Route("smalltalk", "smalltalk.ack", top_p, "a bare yes/no with nothing to confirm")

        if entities.order_ids and (top_route not in ORDER_ACTION_ROUTES or not confident):
            return Route("order_status", prediction.intent, top_p, "message names an order number")

        if confident:
            return Route(top_route, prediction.intent, top_p, f"p={top_p:.2f}, margin={margin:.2f}")

        if session.unclear_turns + 1 >= self.clarify_limit:
            return Route("human_handoff", prediction.intent, top_p, "repeatedly unclear: offer a human")
        choices = tuple(r for r, _ in ranking if r in OFFERABLE)[:3] or ("order_status", "faq", "human_handoff")
        return Route(CLARIFY, prediction.intent, top_p,
                     f"unsure: p={top_p:.2f} < {self.min_confidence} or margin={margin:.2f} < {self.min_margin}",
                     choices=choices)
