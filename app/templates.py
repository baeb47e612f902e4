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
# the database stayed locked or unreachable through the retries (app/retry.py); nothing of the turn was
# stored, so sending the same message again is safe
STORE_UNAVAILABLE = ("Sorry, our system is temporarily unavailable. Nothing was lost: please send your "
                     "message again in a moment.")


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
        "I'm sorry, I couldn't find an answer to that in our help centre. " + _closest(d.get("closest"))
        + "Would you like me to connect you with a person?"),
    "faq_unavailable": lambda d: (
        "I'm sorry, I can't search our help centre right now. Would you like me to connect you with a person, "
        "or would you like to try again in a few minutes?"),
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
}


TASKS = {"return": "return", "exchange": "exchange", "refund_status": "refund check", "cancel": "cancellation"}
_TASK_VERBS = {"return": "start a return", "exchange": "exchange an item", "refund_status": "check on your refund",
               "cancel": "cancel an order"}
_WRITE_PROBLEMS = {
    "not_returnable": "those items are no longer available to return",
    "out_of_stock": "the replacement went out of stock in the meantime",
    "not_your_order": "the order could not be found on your account",
}


def _task(d: dict[str, Any]) -> str:
    return TASKS.get(d.get("task", ""), "request")


def _return_summary(d: dict[str, Any]) -> str:
    parts = [f"Here is your return for order {d['order_id']}: {d['items_text']}."]
    if d.get("refused_text"):
        parts.append(f"These items can't be returned: {d['refused_text']}")
    parts.append(f"Your refund of {d['refund']} goes to {d['method']}, {d['timing']}. {d['shipping']}")
    parts.append("Shall I create the return? Please answer yes or no.")
    return " ".join(parts)


_FLOW_TEMPLATES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ask_order_and_details": lambda d: (
        f"I can help you {_TASK_VERBS.get(d.get('task', ''), 'with that')}. Please tell me the order number (it "
        "looks like SD-10492) and the email address or billing zip code on the order."),
    "return_pick_order": lambda d: f"Which order is it about? Your recent orders are: {d['orders_text']}.",
    "cancel_pick_order": lambda d: f"Which order would you like to cancel? Your recent orders are: {d['orders_text']}.",
    "return_pick_items": lambda d: (
        f"Which items from order {d['order_id']} would you like to return, and how many? {d['items_text']}."),
    "exchange_pick_item": lambda d: (
        f"Which item from order {d['order_id']} would you like to exchange? I can exchange one item at a time: "
        f"{d['items_text']}."),
    "exchange_pick_variant": lambda d: (
        ("I couldn't find that size or colour. " if d.get("unknown") else "")
        + f"Which size or colour of {d['item']} would you like instead? In stock now: {d['options']}."),
    "exchange_out_of_stock": lambda d: (
        f"Sorry, {d['wanted'] or 'that variant'} is out of stock, so I can't exchange your {d['item']}. "
        f"{d['policy']} ({d['clause']}) I can set up a return for a refund instead. Would you like that?"),
    "return_ask_reason": lambda d: "What's the reason for the return?",
    "return_ask_condition": lambda d: (
        "Are the items unused, with all tags attached and in their original packaging?"
        + (" Are the earbuds, beauty, underwear or swimwear items still sealed and unopened?" if d.get("hygiene")
           else "")),
    "return_summary": _return_summary,
    "exchange_summary": lambda d: (
        f"Here is your exchange for order {d['order_id']}: {d['items_text']}, for {d['replacement']}, free of charge. "
        f"{d['shipping']} Shall I set up the exchange? Please answer yes or no."),
    "return_created": lambda d: (
        f"Done: return {d['rma']} is created for {d['items_text']} from order {d['order_id']}. {d['instructions']} "
        f"Your refund of {d['refund']} goes to {d['method']}, {d['timing']}."),
    "exchange_created": lambda d: (
        f"Done: exchange {d['rma']} is set up for {d['items_text']} from order {d['order_id']}; the replacement, "
        f"{d['replacement']}, is reserved for you. {d['instructions']}"),
    "return_refused": lambda d: (
        f"I'm sorry, I can't accept this {_task(d)} for order {d['order_id']}. {d['refused_text']} "
        "If you think this is wrong, a member of our team can take a look. Shall I connect you with a person?"),
    "return_not_delivered": lambda d: (
        f"Order {d['order_id']} is {d['status_text']} and hasn't been delivered yet, so it can't be returned yet. "
        f"{d['policy']} ({d['clause']}) Once it arrives, I can start the return for you here."),
    "return_not_shipped": lambda d: (
        f"Order {d['order_id']} hasn't shipped yet ({d['status_text']}), so there is nothing to send back: you can "
        f"cancel it instead. {d['policy']} ({d['clause']}) Would you like me to cancel it?"),
    "return_order_cancelled": lambda d: f"Order {d['order_id']} was cancelled, so there is nothing to return.",
    "return_already_returned": lambda d: (
        f"{d['items_text']} from order {d['order_id']} {'has' if ',' not in d['items_text'] else 'have'} already "
        f"been returned ({d['rmas']}). I can check where the refund stands if you like."),
    "refund_status": lambda d: d["returns_text"],
    "refund_none": lambda d: (
        (f"I couldn't find a return for order {d['order_id']}." if d.get("order_id")
         else "I couldn't find any returns on your account.")
        + " Would you like to start one?"),
    "cancel_summary": lambda d: (
        f"Order {d['order_id']} ({d['items_text']}) is {d['status_text']}, so it can still be cancelled free of "
        "charge. "
        + (f"Your payment of {d['refund']} will be refunded to {d['method']}. " if d.get("charged")
           else "You haven't been charged for it. ")
        + "Shall I cancel it? Please answer yes or no."),
    "order_cancelled": lambda d: (
        f"Done: order {d['order_id']} is cancelled. "
        + (f"Your payment of {d['refund']} is being refunded to {d['method']}." if d.get("charged")
           else "You won't be charged for it.")),
    "cancel_refused_shipped": lambda d: (
        f"Order {d['order_id']} has already shipped ({d['status_text']}), so it can no longer be cancelled. "
        f"{d['policy']} ({d['clause']}) Once it arrives you can return it: {d['return_policy']}"),
    "cancel_refused_delivered": lambda d: (
        f"Order {d['order_id']} has already been delivered, so it can't be cancelled. {d['policy']} ({d['clause']}) "
        "Would you like to start a return instead?"),
    "cancel_refused_other": lambda d: (
        f"Order {d['order_id']} is {d['status_text']}, so it can't be cancelled."),
    "cancel_already": lambda d: f"Order {d['order_id']} is already cancelled; nothing more to do.",
    "flow_aborted": lambda d: (
        f"Okay, I've stopped the {_task(d)} and nothing was changed. What else can I help you with?"),
    "flow_write_failed": lambda d: (
        f"I couldn't complete the {_task(d)} because "
        f"{_WRITE_PROBLEMS.get(d.get('problem', ''), 'something changed in the meantime')}; nothing was created. "
        "Would you like me to connect you with a person?"),
    "policy_pressure": lambda d: (
        "I understand this matters to you. I can only offer what our policy allows, and I can't make exceptions "
        f"or promises beyond it: {d['policy']} A member of our team can review your case. "
        "Shall I connect you with a person?"),
}
_TEMPLATES.update(_FLOW_TEMPLATES)

FLOW_EXPIRED = ("Your earlier {task} request timed out after {minutes} minutes without a reply, so I stopped it; "
                "nothing was changed.")
_RESUME_QUESTIONS = {
    "verify": "tell me the order number and the email address or zip code on it",
    "order": "tell me which order it is",
    "items": "tell me which items",
    "variant": "tell me the size or colour you'd like instead",
    "reason": "tell me the reason",
    "condition": "tell me whether the items are unused, with tags and original packaging",
    "confirm": "answer yes or no to the summary above",
    "offer": "answer yes or no",
    "offer_return": "answer yes or no",
}


def _closest(article: dict[str, str] | None) -> str:
    """The article nearest a question the FAQ declined, named (not quoted: it did not answer it)."""
    if not article:
        return ""
    where = f" ({article['url']})" if article.get("url") else ""
    return f"The closest article I found is \"{article['title']}\"{where}, in case it helps. "


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
    if flow.name in TASKS:
        question = _RESUME_QUESTIONS.get(str(flow.slot("step") or ""), "")
        order = flow.slot("order")
        about = f" for order {order}" if order else ""
        return f"To continue with your {TASKS[flow.name]}{about}, {question}." if question else ""
    return ""


def choice_label(route: str) -> str:
    return ROUTE_CHOICES.get(route, route)
