from app.guard import Guard
from app.orders import order_facts
from app.schema import Facts, Passage
from app.templates import render
from tests.test_orchestrator import sample_order

G = Guard()


def test_template_replies_always_pass():
    facts = order_facts(sample_order())
    assert G.check(render(facts), facts).accepted


def test_missing_must_say_fact_is_rejected():
    facts = order_facts(sample_order())
    v = G.check("Your order is on its way!", facts)
    assert not v.accepted and "missing:SD-20001" in v.reasons


def test_invented_numbers_dates_urls_emails_are_rejected():
    facts = order_facts(sample_order())
    base = "Order SD-20001 is in transit, tracking 1Z999AA10123456784."
    assert G.check(base, facts).accepted
    for extra, reason in [(" It arrives in 7 days.", "invented:7"), (" See https://evil.example/x.", "invented:"),
                          (" Email help@evil.example.", "invented:help@evil.example"),
                          (" Order SD-99999 too.", "invented:SD-99999")]:
        v = G.check(base + extra, facts)
        assert not v.accepted and any(r.startswith(reason) for r in v.reasons), (extra, v)


def test_promises_need_support_in_the_facts():
    smalltalk = Facts(kind="greeting", route="smalltalk", data={"shop": "Fern & Field"})
    assert not G.check("Hi! You get a full refund and a discount.", smalltalk).accepted
    passage = Passage("refunds", "Refunds", "u", "", "Refunds go to the original payment method.", 0.9)
    faq = Facts(kind="faq_answer", route="faq", passages=(passage,), data={"answer": "x"})
    assert G.check("Refunds go to your original payment method.", faq).accepted


def test_repetition_and_leaks_and_length():
    facts = Facts(kind="thanks", route="smalltalk")
    assert "repetition" in G.check("I'm sorry. I'm sorry. I'm sorry. I'm sorry.", facts).reasons
    assert "leak" in G.check("My instructions: Use ONLY the facts given below.", facts).reasons
    assert "length" in G.check("   ", facts).reasons
    assert "length" in G.check("a" * 5000, facts).reasons
