"""Every fixed shopper-facing sentence, in one place so wording is reviewed in one file.

``render(facts)`` is the template reply for a ``Facts``: what the shopper gets when no model is
configured, when the model is slow or fails, and when the guard rejects the model's text. It always
states every must-say fact, so it always passes the guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.schema import Facts, Flow, Passage

ROUTE_CHOICES = {
    "order_status": "Track an order",
    "returns": "Return or exchange an item",
    "cancel_order": "Cancel an order",
    "faq": "Shipping, payment or another question",
    "human_handoff": "Talk to a person",
}

EMPTY_MESSAGE = "It looks like your message was empty. What can I help you with?"
TOO_LONG = "That message is too long for me ({length} characters; the limit is {limit}). Could you shorten it?"
INTERNAL_ERROR = ("Sorry, something went wrong on our side while answering that. Please try again, "
                  "or ask for a person and a member of our team will help.")


def _order_status(d: dict[str, Any]) -> str:
    parts = [f"Your order {d['order_id']} {'has' if d.get('status') == 'shipped' else 'is'} {d['status_text']}."]
    if d.get("items_text"):
        parts.append(f"It contains {d['items_text']}.")
    if d.get("placed"):
        parts.append(f"It was placed on {d['placed']}.")
    if d.get("shipped"):
        parts.append(f"It shipped on {d['shipped']}" + (f" with {d['carrier']}" if d.get("carrier") else "") + ".")
    if d.get("tracking_number"):
        parts.append(f"The tracking number is {d['tracking_number']}.")
    if d.get("latest_event"):
        parts.append(f"Latest update: {d['latest_event']}.")
    if d.get("delivered"):
        parts.append(f"It was delivered on {d['delivered']}.")
    elif d.get("expected") and d.get("expected_passed"):
        parts.append(f"It was expected by {d['expected']} and hasn't been delivered yet.")
    elif d.get("expected"):
        parts.append(f"Expected delivery: {d['expected']}.")
    if d.get("returns_text"):
        parts.append(f"Returns: {d['returns_text']}.")
    if d.get("next_step"):
        parts.append(d["next_step"])
    return " ".join(parts)


_TEMPLATES: dict[str, Callable[[dict[str, Any]], str]] = {
    "order_status": _order_status,
    "ask_order_number": lambda d: (
        "I can check that for you. What is your order number? It looks like SD-10492 and is in your "
        "confirmation email."),
    "ask_verification": lambda d: (
        f"Thanks! To protect your privacy, please tell me the email address (or billing zip code) used "
        f"for order {d['order_id']}."),
    "verify_failed": lambda d: (
        "I couldn't verify that order with those details. Please check the order number and the email "
        "address or zip code on the order and try again."),
    "locked_out": lambda d: (
        "For your security, order lookups are paused for this chat after too many unsuccessful attempts. "
        f"Please try again in {d['minutes']} minute{'s' if d['minutes'] != 1 else ''}, or ask to talk to a person."),
    "other_customer": lambda d: (
        "This chat is already verified for another customer, so I can't show details of that order here. "
        "Please start a new chat to look it up."),
    "not_your_order": lambda d: (
        f"Order {d['order_id']} isn't one of the orders of the customer verified in this chat, so I can't share "
        "anything about it here. To look up another customer's order, please start a new chat."),
    "token_rejected": lambda d: (
        "I couldn't confirm your sign-in (it may have expired). Please reload the page and sign in again, "
        "or tell me your order number and the email address or billing zip code on the order."),
    "pick_order": lambda d: f"Which order do you mean? Your recent orders are: {d['orders_text']}.",
    "pick_matching_order": lambda d: f"More than one of your orders matches that: {d['orders_text']}. Which one?",
    "no_orders": lambda d: "I couldn't find any orders on your account.",
    "faq_answer": lambda d: d["answer"],
    "faq_unknown": lambda d: (
        "I'm sorry, I couldn't find an answer to that in our help centre. Would you like me to connect "
        "you with a person?"),
    "handoff_offer": lambda d: (
        "I can connect you with a member of our support team. Shall I open a ticket for you? "
        "Our team is available Monday to Friday 8:00-20:00 and Saturday 9:00-17:00 Pacific time."),
    "handoff_opened": lambda d: (
        f"Done: I've opened ticket {d['ticket_id']} and a member of our team will get back to you. "
        "You can keep chatting with me in the meantime."),
    "handoff_declined": lambda d: "No problem. What else can I help you with?",
    "greeting": lambda d: (
        f"Hi! I'm the {d['shop']} assistant. I can track orders, help with returns and answer questions."),
    "thanks": lambda d: "You're welcome! Is there anything else I can help you with?",
    "ack": lambda d: "Okay! What else can I help you with?",
    "goodbye": lambda d: "Thanks for chatting with us. Have a great day!",
    "out_of_scope": lambda d: (
        f"Sorry, I can only help with {d['shop']} orders, returns, shipping and our products. "
        "Is there something about your order I can help with?"),
    "clarify": lambda d: f"I want to make sure I get this right. Is it about: {d['options']}?",
    "not_yet_supported": lambda d: (
        "I can't complete that in chat yet. Would you like me to connect you with a person who can?"),
}


def render(facts: Facts) -> str:
    try:
        template = _TEMPLATES[facts.kind]
    except KeyError:
        raise KeyError(f"no template for facts kind {facts.kind!r}") from None
    return template(facts.data)


def citation(passages: tuple[Passage, ...]) -> str:
    """The sources line appended to FAQ answers (title and url of each distinct article)."""
    seen: dict[str, str] = {}
    for p in passages:
        seen.setdefault(p.title, p.url)
    if not seen:
        return ""
    # an imported FAQ pair may have no url: then the title alone names it
    return "Source: " + "; ".join(f"{title} ({url})" if url else title for title, url in seen.items())


def resume(flow: Flow) -> str:
    if flow.name == "verify_order":
        order = flow.slot("order_id")
        if order:
            return f"To continue with order {order}, please tell me the email address or zip code on it."
        return "If you'd still like me to check an order, just send me the order number."
    if flow.name == "handoff_offer":
        return "Would you still like me to connect you with a person?"
    return ""


def choice_label(route: str) -> str:
    return ROUTE_CHOICES.get(route, route)
