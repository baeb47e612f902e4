"""All prompt text, as langchain-core chat templates. Nothing else in Shopdesk writes prompt text.

Two kinds of prompt, chosen by the facts' kind (measured with the bundled SmolLM2-135M on the 86
model turns of the eval suite; `shopdesk bench` reports the acceptance per route):

- **opener** (facts to state: order status, FAQ answers, an opened ticket): the model writes one
  short, warm sentence and the template reply, which states every fact, follows it
  (``compose``). Asked to restate the facts itself, the 135M model got them wrong in nearly every
  reply (wrong ids and numbers, items copied from examples, "not available" for a pending order):
  1 of 12 order answers and 2 of 8 FAQ answers passed the guard.
- **full** (nothing to state: greetings, thanks, goodbyes, "no, thanks"): the model writes the reply.

Each prompt is a fixed system message and worked examples, then the shopper's last message with the
little context an opener needs. The fixed part comes first so that its key/value cache is computed
once per process (``app.decoder`` keeps it); only the last message is new on each turn. Earlier
turns are not sent: the small model continued them instead of answering (it repeated the previous
verification prompt). Prompts hold no secrets and no other customer's data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from app.schema import Facts

SYSTEM_FULL = ("You are the friendly support assistant of {shop}, an online shop. Reply to the shopper in one or "
               "two short sentences, and offer help with orders, returns or questions.")
SYSTEM_OPENER = ("You are the friendly support assistant of {shop}, an online shop. Write ONE short, warm sentence "
                 "that starts your answer to the shopper. The answer itself follows your sentence, so do not give "
                 "any details.")

# Worked examples per facts kind: (shopper turn as the model sees it, reply). Values in them are made up
# and differ from any demo shop data, so a copied example shows up as an invented fact in the guard.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "order_status": (
        ("where is my order SD-55501? my email is kim@example.com\n(order status: in transit)",
         "Thanks for checking in, I found your order."),
        ("my package still hasn't come\n(order status: delayed)",
         "Thanks for your patience, here is the latest on your parcel."),
        ("90210\n(order status: processing)", "Thank you, here is your order."),
    ),
    "faq_answer": (
        ("do gift cards expire?", "Good question, here is how gift cards work."),
        ("can i send back shoes i wore outside", "Happy to help with that, here is what our help centre says."),
    ),
    "handoff_opened": (("yes please", "Of course, I'll get a person to help you."),
                       ("yes", "Sure, I'm passing this on to our team now.")),
    "greeting": (("hello", "Hi there! How can I help you today: an order, a return or a question?"),),
    "thanks": (("thank you!", "You're welcome! Is there anything else I can help you with?"),),
    "goodbye": (("bye", "Thanks for chatting with us. Have a great day!"),),
    "ack": (("ok", "Great! Let me know if there's anything else I can help you with."),),
    "handoff_declined": (("no thanks", "No problem! What else can I help you with?"),),
}
# The words an opener may start with, enforced when decoding (``first_words``). Left free, the 135M model
# began most FAQ openers with "I'm sorry for the confusion, but as a chatbot..." or "Yes, ...": 30 of 53
# held-out shopper questions (knowledge_base/questions) passed the guard; starting from these, 53 of 53.
OPENER_STARTS = ("Thanks", "Thank", "Sure", "Good", "Great", "Happy", "Here", "Of", "Absolutely", "Hi", "Hello",
                 "Certainly", "Glad", "Let")
# kinds whose reply states nothing the shop is liable for: the model writes all of it
FULL_KINDS = frozenset({"greeting", "thanks", "goodbye", "ack", "handoff_declined"})
# an opener longer than this is not an opener: compose keeps the model's whole text for the guard to judge
OPENER_MAX_CHARS = 160
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.DOTALL)


def is_opener(facts: Facts) -> bool:
    """Any kind with facts to state gets an opener; unknown kinds too (the template is the safe part)."""
    return facts.kind not in FULL_KINDS


@lru_cache(maxsize=32)
def _template(kind: str, opener: bool) -> Any:
    from langchain_core.prompts import ChatPromptTemplate

    examples = EXAMPLES.get(kind) or EXAMPLES["order_status" if opener else "ack"]
    messages: list[tuple[str, str]] = [("system", SYSTEM_OPENER if opener else SYSTEM_FULL)]
    for shopper, reply in examples:  # literal text: braces in it must not become template variables
        messages += [("human", _escape(shopper)), ("ai", _escape(reply))]
    messages.append(("human", "{message}{context}"))
    return ChatPromptTemplate.from_messages(messages)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def context_line(facts: Facts) -> str:
    """The little an opener needs to fit the answer: the order's status (for "sorry it's late").

    Nothing for FAQ answers: given the article's title, the model answered with the title alone."""
    if facts.kind == "order_status" and facts.data.get("status_text"):
        return f"\n(order status: {facts.data['status_text']})"
    return ""


def build_messages(facts: Facts, message: str, history: tuple[tuple[str, str], ...], shop: str,
                   history_turns: int = 4) -> list[dict[str, str]]:
    """Chat messages (role/content dicts, ready for a chat template or an OpenAI-style server).

    ``history`` and ``history_turns`` are accepted for callers but not sent (see the module docstring).
    """
    opener = is_opener(facts)
    prompt = _template(facts.kind, opener).invoke({"shop": shop, "context": context_line(facts),
                                                   "message": " ".join(message.split())})
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles[m.type], "content": str(m.content)} for m in prompt.to_messages()]


def first_words(messages: list[dict[str, str]]) -> tuple[str, ...]:
    """The words a reply to ``messages`` may start with (none: any); an opener prompt gets OPENER_STARTS.

    Read off the messages so that a generator needs nothing beyond them (``app.generator``)."""
    opener_tail = SYSTEM_OPENER.split("{shop}")[1]
    if messages and messages[0]["role"] == "system" and messages[0]["content"].endswith(opener_tail):
        return OPENER_STARTS
    return ()


def compose(facts: Facts, model_text: str, template: str) -> str:
    """The reply the guard judges: for an opener, its first sentence (of the first line) and then the
    template reply; for a full reply, the model's text."""
    text = model_text.strip()
    if not is_opener(facts) or not text:
        return text
    line = text.split("\n", 1)[0].strip()
    first = _SENTENCE.match(line)
    opener = first.group(1).strip() if first else line
    if len(opener) > OPENER_MAX_CHARS:  # not a short opener: let the guard see everything it said
        opener = text
    if not opener.endswith((".", "!", "?", ":")):
        opener += "."
    return f"{opener} {template}"


def reply_complete(messages: list[dict[str, str]], text: str) -> bool:
    """Whether the model has written all that ``compose`` will keep, so decoding can stop there.

    For an opener prompt that is its first sentence: a sentence end followed by more text (the piece
    after "." tells "3.5" from an end), or a line break. A full reply runs to the model's own end."""
    if not first_words(messages):
        return False
    stripped = text.lstrip()
    if "\n" in stripped:
        return True
    first = _SENTENCE.match(stripped)
    return first is not None and len(stripped) > len(first.group(1))


def system_prompt_fragments() -> tuple[str, ...]:
    """Distinctive runs of the instructions; the guard refuses replies that echo them."""
    return ("customer-service assistant of", "support assistant of", "starts your answer to the shopper",
            "do not give any details", "(order status:", "warm sentence", "short sentence")
