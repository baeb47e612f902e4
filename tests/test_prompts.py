"""Prompts: a fixed prefix per facts kind (so its cache can be reused), openers composed with the template."""

from app.guard import Guard
from app.orders import order_facts
from app.prompts import FULL_KINDS, build_messages, compose, is_opener
from app.schema import Facts
from app.templates import render
from tests.test_orchestrator import sample_order

SHOP = "Fern & Field"


def test_everything_but_the_last_message_is_the_same_for_one_kind():
    a = build_messages(order_facts(sample_order()), "where is my order?", (), SHOP)
    other = Facts(kind="order_status", route="order_status", data={"status_text": "pending"}, must_say=("SD-1",))
    b = build_messages(other, "status of SD-1 {please}", (("user", "hi"), ("assistant", "Hello!")), SHOP)
    assert a[:-1] == b[:-1] and a[0]["role"] == "system" and SHOP in a[0]["content"]
    assert a[-1]["role"] == b[-1]["role"] == "user"
    assert "(order status: in transit)" in a[-1]["content"] and "{please}" in b[-1]["content"]
    assert "hi" not in b[-1]["content"]  # earlier turns are not sent


def test_fact_kinds_get_an_opener_and_smalltalk_a_full_reply():
    assert is_opener(order_facts(sample_order())) and is_opener(Facts(kind="some_new_kind", route="x"))
    assert not any(is_opener(Facts(kind=k, route="smalltalk")) for k in FULL_KINDS)
    greeting = build_messages(Facts(kind="greeting", route="smalltalk"), "hello", (), SHOP)
    assert "one or two short sentences" in greeting[0]["content"]


def test_compose_keeps_the_first_sentence_then_the_template():
    facts = order_facts(sample_order())
    template = render(facts)
    text = compose(facts, " Thanks for checking in, I found your order. It is on a boat to Mars.", template)
    assert text == f"Thanks for checking in, I found your order. {template}"
    assert Guard().check(text, facts).accepted
    assert compose(facts, "Here it is", template) == f"Here it is. {template}"
    assert compose(facts, "", template) == ""  # nothing written: the guard rejects it (length)
    long = "Thanks " + "so very " * 30 + "much, it arrives in 3 days"
    assert compose(facts, long, template).startswith(long)  # not an opener: judged whole
    assert not Guard().check(compose(facts, long, template), facts).accepted  # 3 days is invented


def test_a_full_reply_is_the_model_text():
    thanks = Facts(kind="thanks", route="smalltalk")
    assert compose(thanks, " You're welcome! Anything else? ", render(Facts(kind="thanks", route="s"))) == \
        "You're welcome! Anything else?"


def test_a_bad_opener_fails_the_guard_even_with_the_template_after_it():
    facts = order_facts(sample_order())
    for opener in ("Your parcel arrives on Friday.", "As a chatbot, I can't see orders.", "It ships from FedEx."):
        assert not Guard().check(compose(facts, opener, render(facts)), facts).accepted, opener


def test_openers_start_from_a_fixed_set_of_words_and_full_replies_anywhere():
    from app.prompts import OPENER_STARTS, first_words

    assert first_words(build_messages(order_facts(sample_order()), "where is it?", (), SHOP)) == OPENER_STARTS
    assert first_words(build_messages(Facts(kind="thanks", route="smalltalk"), "thx", (), SHOP)) == ()
    assert first_words([{"role": "user", "content": "hi"}]) == ()


def test_an_opener_ends_at_the_first_line():
    facts = order_facts(sample_order())
    template = render(facts)
    assert compose(facts, "Thanks for your patience, I'm glad\n(order status: delivered)", template) == \
        f"Thanks for your patience, I'm glad. {template}"
