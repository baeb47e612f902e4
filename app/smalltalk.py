"""Replies that need no shop data: greetings, thanks, goodbyes, out-of-scope, clarifying questions."""

from __future__ import annotations

from app.schema import Facts
from app.templates import choice_label

_SMALLTALK_KIND = {"smalltalk.greeting": "greeting", "smalltalk.thanks": "thanks", "smalltalk.goodbye": "goodbye",
                  "smalltalk.ack": "ack"}


def smalltalk(intent: str, shop: str) -> Facts:
    return Facts(kind=_SMALLTALK_KIND.get(intent, "greeting"), route="smalltalk", data={"shop": shop}, max_chars=240)


def out_of_scope(shop: str) -> Facts:
    # a refusal is policy: its wording is fixed, not left to the model
    return Facts(kind="out_of_scope", route="out_of_scope", data={"shop": shop}, use_model=False)


def clarify(choices: tuple[str, ...]) -> Facts:
    labels = tuple(choice_label(c) for c in choices)
    return Facts(kind="clarify", route="clarify", data={"options": ", ".join(labels[:-1]) + " or " + labels[-1]
                                                         if len(labels) > 1 else labels[0]},
                 choices=labels, use_model=False)
