"""Acceptance (issue 4): enumerating 1,000 order numbers in one session from one client address reveals
nothing about any order, and the lockout holds. On SQLite and on PostgreSQL (fixture ``db_engine``)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import FrozenClock
from app.db import VerificationAttempt
from app.factory import build_assistant
from app.fixtures import load_fixtures
from app.orders import STATUS_TEXT
from app.schema import Message
from app.seed import demo_fixtures

NOW = datetime(2026, 3, 15, 10, 0)
SHOP = demo_fixtures(now=NOW)  # 120 customers, orders SD-10001..SD-10400
EXISTING = {o["id"] for o in SHOP["orders"]}
# 1,000 numbers, 400 that exist and 600 that do not, alternating so both meet every stage of the lockout
_MISSING = [f"SD-{n}" for n in range(10401, 11001)]
NUMBERS = [n for pair in zip(sorted(EXISTING), _MISSING, strict=False) for n in pair] + _MISSING[len(EXISTING):]


def _secrets_of_the_shop() -> set[str]:
    """Strings that would tell something about an order: its facts and its customer."""
    facts = {c[k] for c in SHOP["customers"] for k in ("name", "email", "phone")}
    for o in SHOP["orders"]:
        facts |= {i["name"] for i in o["items"]} | {o.get("tracking_number", ""), o.get("carrier", "")}
        facts |= {e["description"] for e in o.get("tracking_events") or []}
    facts |= set(STATUS_TEXT.values()) | {r["id"] for r in SHOP["returns"]}
    return {f.lower() for f in facts if f and len(f) > 2} - {"ups"}  # "ups" is in "lookups"


SECRETS = _secrets_of_the_shop()


@pytest.fixture()
def assistant(db_engine, settings, fake_models):
    load_fixtures(db_engine, SHOP)
    return build_assistant(settings, fake_models, clock=FrozenClock(NOW), engine=db_engine)


def _leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [s for s in SECRETS if s in lowered]


def _normalised(text: str, order_id: str) -> str:
    return text.replace(order_id, "<order>")


def _failures(assistant) -> int:
    with Session(assistant.c.sessions.engine) as s:
        return s.scalar(select(func.count()).select_from(VerificationAttempt)
                        .where(VerificationAttempt.success.is_(False))) or 0


def test_enumerating_1000_order_numbers_reveals_nothing_and_the_lockout_holds(assistant):
    max_failures = assistant.settings.max_failed_verifications
    replies = []
    for i, number in enumerate(NUMBERS):
        guess = f"zip {90000 + i}" if i % 2 else f"my email is guess{i}@example.com"
        replies.append(assistant.respond(Message("attacker", f"where is order {number}? {guess}",
                                                 client_id="203.0.113.66")))
    assert not any(r.verified for r in replies)
    assert [r.facts_kind for r in replies] == ["verify_failed"] * (max_failures - 1) + \
        ["locked_out"] * (len(NUMBERS) - max_failures + 1)
    assert {r.route for r in replies} == {"order_status"}
    leaks = {NUMBERS[i]: _leaks(r.text) for i, r in enumerate(replies) if _leaks(r.text)}
    assert not leaks
    # an order that exists and one that does not get the same text at every step
    texts = {_normalised(r.text, n) for r, n in zip(replies, NUMBERS, strict=True)}
    assert len(texts) == 2, texts
    seen = {(r.facts_kind, _normalised(r.text, n), n in EXISTING) for r, n in zip(replies, NUMBERS, strict=True)}
    assert {(k, t) for k, t, exists in seen if exists} == {(k, t) for k, t, exists in seen if not exists}
    assert not re.search(r"not (?:be )?found|doesn'?t exist|does not exist|no such order", " ".join(texts), re.I)
    # locked attempts are not even looked up: only the first failures are in the database
    assert _failures(assistant) == max_failures
    # the lockout holds for the right details, for a new session from that client, and for a token-less retry
    right = "where is order SD-10002? my email is ada.park@example.com"
    for session in ("attacker", "attacker-2"):
        r = assistant.respond(Message(session, right, client_id="203.0.113.66"))
        assert r.facts_kind == "locked_out" and not r.verified and not _leaks(r.text)


def test_a_verified_shopper_enumerating_other_orders_learns_nothing_and_is_locked_out(assistant):
    first = assistant.respond(Message("ada", "where is SD-10001, ada.park@example.com", client_id="198.51.100.1"))
    assert first.verified and "SD-10001" in first.text
    own = {o["id"] for o in SHOP["orders"] if o["customer"] == "C0001"}
    others = [n for n in NUMBERS if n not in own][:1000 - len(own)]
    replies = [assistant.respond(Message("ada", f"and {n}?", client_id="198.51.100.1")) for n in others]
    kinds = [r.facts_kind for r in replies]
    max_failures = assistant.settings.max_failed_verifications
    assert kinds == ["not_your_order"] * (max_failures - 1) + ["locked_out"] * (len(others) - max_failures + 1)
    ada_facts = {i["name"].lower() for o in SHOP["orders"] if o["customer"] == "C0001" for i in o["items"]}
    assert not {n: _leaks(r.text) for n, r in zip(others, replies, strict=True)
                if set(_leaks(r.text)) - ada_facts - {"ada park"}}
    assert len({_normalised(r.text, n) for r, n in zip(replies, others, strict=True)}) == 2
