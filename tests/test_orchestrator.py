"""Whole turns through the Assistant with the fakes, a real SQLite database and a real Chroma index."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import HandoffTicket, TurnRow
from app.schema import Message, Reply, Token
from app.store import EventView, ItemView, OrderView


def sample_order() -> OrderView:
    return OrderView(id="SD-20001", customer_id="C900", status="in_transit", placed_at=datetime(2026, 3, 1),
                     items=(ItemView("SHOE-TR-42", "Trail runner", 1, Decimal("89.00"), "shoes", False),),
                     carrier="UPS", tracking_number="1Z999AA10123456784", shipped_at=date(2026, 3, 2),
                     expected_delivery=date(2026, 3, 17),
                     events=(EventView(datetime(2026, 3, 3, 9), "Reno, NV", "Departed facility"),))


def say(assistant, text, session="s1", client="1.2.3.4") -> Reply:
    return assistant.respond(Message(session, text, client_id=client))


def test_order_status_needs_verification_then_answers_from_the_database(make_assistant):
    a = make_assistant()
    r = say(a, "hi")
    assert r.route == "smalltalk"
    r = say(a, "where is my order SD-20001?")
    assert r.route == "order_status" and not r.verified
    assert "email" in r.text.lower() and "in transit" not in r.text.lower()
    r = say(a, "ada@example.com")
    assert r.route == "order_status" and r.verified
    assert "in transit" in r.text and "1Z999AA10123456784" in r.text and "UPS" in r.text
    # now verified: another of her orders needs no new verification
    r = say(a, "and SD-20002?")
    assert "pending" in r.text and r.verified


def test_wrong_email_and_unknown_order_get_the_same_reply(make_assistant):
    a = make_assistant()
    wrong_email = say(a, "order SD-20001 email eve@example.com", session="a")
    unknown = say(a, "order SD-99999 email eve@example.com", session="b")
    assert wrong_email.text == unknown.text
    assert not wrong_email.verified and "1Z999" not in wrong_email.text


def test_lockout_after_five_failures_even_with_the_right_email_then(make_assistant):
    a = make_assistant()
    for i in range(5):
        r = say(a, f"order SD-{30000 + i} email x@example.com")
    assert "paused" in r.text
    r = say(a, "order SD-20001 email ada@example.com")
    assert not r.verified and "in transit" not in r.text and "paused" in r.text
    # lockout is per client address too: a new session from the same client is locked
    r = say(a, "order SD-20001 email ada@example.com", session="fresh")
    assert not r.verified and "paused" in r.text


def test_one_customer_per_session(make_assistant):
    a = make_assistant()
    assert say(a, "SD-20001 ada@example.com").verified
    r = say(a, "what about SD-20003 ben@example.com")
    assert "Parka" not in r.text and "another customer" in r.text


def test_verified_shopper_without_number_is_asked_which_order(make_assistant):
    a = make_assistant()
    say(a, "SD-20001 ada@example.com")
    r = say(a, "where is my order")
    assert "SD-20001" in r.text and "SD-20002" in r.text and set(r.choices) == {"SD-20001", "SD-20002"}


def test_faq_answer_cites_sources(make_assistant):
    # hashing-embedder similarities are lower than MiniLM's: the floor is a setting
    r = say(make_assistant(retrieval_min_score=0.1), "how long does shipping take")
    assert r.route == "faq" and r.sources and r.facts_kind == "faq_answer"
    assert "Source:" in r.text and "https://fernandfield.example/help/" in r.text
    assert r.answerability["answerable"] and r.to_dict()["answerability"] == r.answerability


def test_below_the_relevance_floor_the_faq_declines_and_offers_a_human(make_assistant):
    a = make_assistant(retrieval_min_score=0.99)
    r = say(a, "how long does shipping take")
    assert r.route == "faq" and r.facts_kind == "faq_unknown" and r.handoff and not r.sources
    assert "couldn't find" in r.text
    assert r.answerability["reason"] == "below_floor" and not r.answerability["answerable"]
    assert say(a, "hello", session="s2").answerability is None  # only FAQ turns carry one


def test_handoff_offer_then_yes_opens_exactly_one_ticket(make_assistant):
    a = make_assistant()
    r = say(a, "I want to talk to a human")
    assert r.route == "human_handoff" and r.handoff and not r.actions
    r = say(a, "yes please")
    assert [x.name for x in r.actions] == ["open_handoff_ticket"]
    say(a, "talk to a human")
    say(a, "yes")
    engine = a.c.sessions.engine
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(HandoffTicket)) == 1


def test_empty_and_oversize_input_get_clear_messages(make_assistant):
    a = make_assistant(max_message_chars=100)
    assert "empty" in say(a, "   ").text
    r = say(a, "x" * 101)
    assert "too long" in r.text and r.route == "invalid_input"


def test_turns_are_persisted_with_pii_masked(make_assistant):
    a = make_assistant()
    say(a, "SD-20001 ada@example.com")
    with Session(a.c.sessions.engine) as s:
        turn = s.scalars(select(TurnRow)).one()
    assert "ada@example.com" not in turn.user_text and "a***@example.com" in turn.user_text
    assert turn.route == "order_status" and turn.reply["verified"] is True


def test_stream_yields_tokens_then_the_reply(make_assistant):
    events = list(make_assistant().stream(Message("s", "hello")))
    assert isinstance(events[-1], Reply)
    assert all(isinstance(e, Token) for e in events[:-1]) and len(events) > 2
    assert "".join(e.text for e in events[:-1]) == events[-1].text


def test_unclear_twice_offers_a_human(make_assistant):
    a = make_assistant(intent_confidence_min=0.99)
    assert say(a, "hmm the thing").route == "clarify"
    assert say(a, "the other thing").route == "human_handoff"


@pytest.mark.parametrize("text", ["what is the capital of France", "write me a poem"])
def test_out_of_scope_is_declined_politely(make_assistant, text):
    r = say(make_assistant(), text)
    assert r.route == "out_of_scope" and "only help" in r.text
