"""Order status through whole turns (fakes, real SQLite): naming orders without a number, picking from
a list, signed customer tokens, one customer per session, and the lockout."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import VerificationAttempt
from app.schema import Message, Reply
from app.tokens import load_secret, sign

NOW = datetime(2026, 3, 15, 10, 0)


def _item(sku: str, name: str, price: float, category: str, qty: int = 1) -> dict:
    return {"sku": sku, "name": name, "qty": qty, "price": price, "category": category}


SHOP = {
    "customers": [
        {"id": "C900", "name": "Ada Park", "email": "ada@example.com", "zip": "94110"},
        {"id": "C901", "name": "Ben Okafor", "email": "ben@example.com", "zip": "10027"},
    ],
    "orders": [
        {"id": "SD-20001", "customer": "C900", "placed_at": "2026-03-01T09:00:00", "status": "in_transit",
         "shipped_at": "2026-03-02", "expected_delivery": "2026-03-17", "carrier": "UPS",
         "tracking_number": "1Z999AA10123456784", "items": [_item("TRG-SLT-09", "Trail Runner GTX (Slate, 9)", 139,
                                                                  "shoes")]},
        {"id": "SD-20002", "customer": "C900", "placed_at": "2026-03-14T18:00:00", "status": "pending",
         "payment_method": "visa-4242", "items": [_item("ECM-CRM", "Enamel Camp Mug (Cream)", 18, "home", 2)]},
        {"id": "SD-20004", "customer": "C900", "placed_at": "2026-02-10T12:00:00", "status": "delivered",
         "shipped_at": "2026-02-11", "delivered_at": "2026-02-14", "carrier": "USPS",
         "tracking_number": "9400111899223344556677",
         "items": [_item("NCH-BLK", "Noise-Cancelling Headphones (Black)", 249, "electronics")]},
        {"id": "SD-20005", "customer": "C900", "placed_at": "2026-03-05T08:00:00", "status": "delayed",
         "shipped_at": "2026-03-06", "expected_delivery": "2026-03-10", "carrier": "FedEx",
         "tracking_number": "794612203345",
         "tracking_events": [{"at": "2026-03-09T16:00:00", "location": "Sacramento, CA",
                              "description": "Delayed: severe weather in the area"}],
         "items": [_item("NCH-SND", "Noise-Cancelling Headphones (Sand)", 249, "electronics"),
                   _item("BNE-CHR", "Wool Beanie (Charcoal)", 28, "accessories")]},
        {"id": "SD-20006", "customer": "C900", "placed_at": "2026-02-20T10:00:00", "status": "cancelled",
         "payment_method": "visa-4242", "items": [_item("RRJ-BLU-M", "Ridgeline Rain Jacket (Lake Blue, M)", 149,
                                                        "outerwear")]},
        {"id": "SD-20003", "customer": "C901", "placed_at": "2026-02-01T10:00:00", "status": "delivered",
         "delivered_at": "2026-02-05", "carrier": "USPS", "tracking_number": "9400111899220000000001",
         "items": [_item("PKA-BLK-L", "Insulated Parka (Black, L)", 229, "outerwear")]},
    ],
}
BEN_FACTS = ("Parka", "9400111899220000000001", "Ben", "February 5")


@pytest.fixture()
def shop(make_assistant):
    return make_assistant(fixtures=SHOP)


def say(assistant, text: str, session: str = "s1", client: str = "10.0.0.1", token: str | None = None) -> Reply:
    return assistant.respond(Message(session, text, client_id=client, customer_token=token))


def verified(assistant, session: str = "s1") -> None:
    assert say(assistant, "SD-20001 ada@example.com", session=session).verified


def token_for(assistant, customer: str, expires: datetime) -> str:
    s = assistant.settings
    return sign(customer, expires, load_secret(s.customer_token_secret, s.data_dir))


def failures(assistant) -> list[tuple[str, str]]:
    with Session(assistant.c.sessions.engine) as s:
        rows = s.scalars(select(VerificationAttempt).where(VerificationAttempt.success.is_(False))).all()
        return [(r.method, r.reason) for r in rows]


# ---- naming an order without its number ----------------------------------------------------------------
def test_my_last_order_is_the_newest_one(shop):
    verified(shop)
    r = say(shop, "and where is my last order?")
    assert r.facts_kind == "order_status" and "SD-20002" in r.text and "pending" in r.text


def test_my_previous_order_is_the_one_before(shop):
    verified(shop)
    r = say(shop, "where is my previous order")
    assert "SD-20005" in r.text and "delayed" in r.text


def test_the_order_with_the_headphones_matches_two_so_the_reply_lists_them_and_asks(shop):
    verified(shop)
    r = say(shop, "where is the order with the headphones")
    assert r.facts_kind == "pick_matching_order" and r.choices == ("SD-20005", "SD-20004")
    assert "Noise-Cancelling Headphones (Sand)" in r.text and "SD-20001" not in r.text
    r = say(shop, "SD-20004")  # a choice (quick reply)
    assert r.facts_kind == "order_status" and "SD-20004" in r.text and "delivered" in r.text


@pytest.mark.parametrize(("answer", "order"), [("the second one", "SD-20004"), ("2", "SD-20004"),
                                               ("the first one", "SD-20005"), ("the last one", "SD-20004"),
                                               ("the sand ones", "SD-20005"), ("the black pair", "SD-20004")])
def test_an_answer_to_the_list_picks_from_it(shop, answer, order):
    """The handler alone (the router keeps such answers in the flow only when the classifier lets it)."""
    verified(shop)
    listed = say(shop, "where is the order with the headphones")
    state = shop.c.sessions.load("s1")
    assert state.flow.slot("choices") == list(listed.choices)
    result = shop.c.orders.handle(state, shop.c.extractor.extract(answer), "10.0.0.1", NOW, text=answer)
    assert result.facts.kind == "order_status" and result.facts.data["order_id"] == order
    assert result.state.flow is None


def test_a_typo_still_matches(shop):
    verified(shop)
    r = say(shop, "where is my rain jackett?")  # typo
    assert "SD-20006" in r.text and "cancelled" in r.text and "You were not charged" in r.text
    r = say(shop, "track my hedphones")  # two orders have headphones
    assert r.facts_kind == "pick_matching_order" and set(r.choices) == {"SD-20004", "SD-20005"}


def test_the_newest_of_the_matching_orders(shop):
    verified(shop)
    r = say(shop, "track my latest headphones order")
    assert r.facts_kind == "order_status" and "SD-20005" in r.text


def test_no_reference_lists_recent_orders_and_a_choice_answers(shop):
    verified(shop)
    r = say(shop, "where is my order")
    assert r.facts_kind == "pick_order" and r.choices[:2] == ("SD-20002", "SD-20005") and len(r.choices) == 5
    r = say(shop, r.choices[3])
    assert "SD-20006" in r.text and "cancelled" in r.text


def test_an_unverified_shopper_naming_an_item_is_asked_for_the_order_number(shop):
    r = say(shop, "where is the order with the headphones")
    assert not r.verified and r.facts_kind == "ask_order_number" and "Headphones" not in r.text


def test_item_words_only_ever_match_the_verified_customers_orders(shop):
    verified(shop)
    r = say(shop, "where is my parka")  # Ben's order has the parka; Ada's none
    assert r.facts_kind == "pick_order" and not any(fact in r.text for fact in BEN_FACTS)


# ---- one customer per session ------------------------------------------------------------------------------
def test_another_customers_order_and_an_unknown_order_get_the_same_reply(shop):
    verified(shop)
    other = say(shop, "what about SD-20003 ben@example.com")
    unknown = say(shop, "what about SD-29999 ben@example.com")
    assert other.text.replace("SD-20003", "X") == unknown.text.replace("SD-29999", "X")
    assert other.facts_kind == "not_your_order" and "another customer" in other.text
    assert not any(fact in other.text for fact in BEN_FACTS)
    assert failures(shop) == [("order", "not_customer_order")] * 2


def test_probing_other_orders_while_verified_locks_the_session_out(shop):
    verified(shop)
    for n in range(5):
        r = say(shop, f"and SD-2{n:04d}9?")
    assert r.facts_kind == "locked_out"
    r = say(shop, "SD-20001 please")  # her own order: locked too
    assert r.facts_kind == "locked_out" and "1Z999AA10123456784" not in r.text


# ---- signed customer tokens ---------------------------------------------------------------------------------
def test_a_valid_token_verifies_the_session(shop):
    token = token_for(shop, "C900", NOW + timedelta(minutes=30))
    r = say(shop, "where is my last order", token=token)
    assert r.verified and "SD-20002" in r.text
    assert say(shop, "thanks", token=token).verified  # the session stays verified


@pytest.mark.parametrize("case", ["expired", "forged", "unknown customer", "garbage"])
def test_a_bad_token_is_refused_counted_and_says_what_to_do(shop, case):
    secret = load_secret(shop.settings.customer_token_secret, shop.settings.data_dir)
    token = {"expired": sign("C900", NOW - timedelta(seconds=1), secret),
             "forged": sign("C900", NOW + timedelta(minutes=30), b"not-the-shop-secret-" * 3),
             "unknown customer": sign("C999", NOW + timedelta(minutes=30), secret),
             "garbage": "let-me-in"}[case]
    r = say(shop, "where is my last order", token=token)
    assert not r.verified and r.facts_kind == "token_rejected" and "sign-in" in r.text and "SD-2000" not in r.text
    assert failures(shop) == [("token", {"expired": "expired", "forged": "forged", "unknown customer":
                                         "unknown_customer", "garbage": "malformed"}[case])]


def test_with_a_bad_token_the_order_number_and_email_still_verify(shop):
    r = say(shop, "SD-20001 ada@example.com", token="v1.QzkwMA.1.AAAA")
    assert r.verified and "1Z999AA10123456784" in r.text


def test_five_bad_tokens_lock_lookups(shop):
    for _ in range(5):
        r = say(shop, "where is my last order", token="v1.QzkwMA.1.AAAA")
    assert r.facts_kind == "locked_out"
    good = token_for(shop, "C900", NOW + timedelta(minutes=30))
    assert not say(shop, "where is my last order", token=good).verified


def test_a_token_for_another_customer_in_a_verified_session_gets_nothing(shop):
    verified(shop)
    r = say(shop, "where is my last order", token=token_for(shop, "C901", NOW + timedelta(minutes=30)))
    assert r.facts_kind == "other_customer" and not any(fact in r.text for fact in BEN_FACTS)
    assert say(shop, "where is my last order").text.count("SD-20002") == 1  # still Ada's session


# ---- lockout ------------------------------------------------------------------------------------------------
def test_the_lockout_says_how_long_and_ends_after_the_period(make_assistant):
    a = make_assistant(fixtures=SHOP, lockout_minutes=30)
    for i in range(5):
        r = say(a, f"order SD-2000{i} email eve@example.com")
    assert r.facts_kind == "locked_out" and "30 minutes" in r.text
    a.c.clock.at = NOW + timedelta(minutes=20)
    r = say(a, "order SD-20001 email ada@example.com")
    assert r.facts_kind == "locked_out" and "10 minutes" in r.text and not r.verified
    a.c.clock.at = NOW + timedelta(minutes=30, seconds=1)
    assert say(a, "order SD-20001 email ada@example.com").verified
    assert len(failures(a)) == 5  # attempts while locked are not even tried


def test_the_lockout_holds_per_client_across_sessions_but_not_for_other_clients(shop):
    for i in range(5):
        say(shop, f"order SD-2000{i} email eve@example.com", session=f"s{i}", client="203.0.113.9")
    assert say(shop, "SD-20001 ada@example.com", session="new", client="203.0.113.9").facts_kind == "locked_out"
    assert say(shop, "SD-20001 ada@example.com", session="other", client="198.51.100.7").verified


def test_failures_spread_over_more_than_the_period_do_not_lock(make_assistant):
    a = make_assistant(fixtures=SHOP, lockout_minutes=30)
    for i in range(8):
        a.c.clock.at = NOW + timedelta(minutes=8 * i)  # at most 4 failures in any 30 minutes
        r = say(a, f"order SD-2000{i % 5} email eve@example.com")
        assert r.facts_kind == "verify_failed", i


def test_asking_for_details_does_not_tell_whether_an_order_exists(shop):
    real = say(shop, "where is SD-20003?", session="a")
    fake = say(shop, "where is SD-20993?", session="b")
    assert real.text.replace("SD-20003", "X") == fake.text.replace("SD-20993", "X")
    assert real.facts_kind == fake.facts_kind == "ask_verification"


def test_an_expired_token_sent_with_every_turn_of_a_verified_session_is_not_a_failure(shop):
    token = token_for(shop, "C900", NOW + timedelta(minutes=5))
    assert say(shop, "where is my last order", token=token).verified
    shop.c.clock.at = NOW + timedelta(minutes=10)  # the widget keeps sending the now expired token
    for _ in range(6):
        r = say(shop, "where is my last order", token=token)
    assert r.verified and "SD-20002" in r.text and failures(shop) == []
