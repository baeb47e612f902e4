"""The intent taxonomy: fine intents, the stable routes they map to, and nothing else.

Route names are a contract (evals, API, reports use them). Fine intents are ``<route>.<name>``
and may grow; every fine intent maps to exactly one route by its prefix.
"""

from __future__ import annotations

ROUTES: tuple[str, ...] = (
    "order_status",
    "returns",
    "cancel_order",
    "faq",
    "human_handoff",
    "smalltalk",
    "out_of_scope",
)

# Fine intents the classifier predicts. Each training file in intents/data/ declares one of these.
INTENTS: tuple[str, ...] = (
    "order_status.where_is_order",
    "returns.start_return",
    "returns.exchange",
    "returns.refund_status",
    "cancel_order.cancel",
    "faq.shipping",
    "faq.payment",
    "faq.returns_policy",
    "faq.account",
    "faq.promotions",
    "faq.warranty",
    "faq.product",
    "faq.contact",
    "human_handoff.agent",
    "human_handoff.complaint",
    "smalltalk.greeting",
    "smalltalk.thanks",
    "smalltalk.goodbye",
    "smalltalk.ack",
    "out_of_scope.other",
)


def route_of(intent: str) -> str:
    """The stable route of a fine intent (``faq.shipping`` -> ``faq``)."""
    route = intent.split(".", 1)[0]
    if route not in ROUTES:
        raise ValueError(f"intent {intent!r} does not start with a known route {ROUTES}")
    return route
