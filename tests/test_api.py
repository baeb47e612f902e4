"""The shopper API over a real Assistant (fakes, a real SQLite shop): chat, streaming, sessions and their
tokens, transcripts, feedback, error shapes, the shop page and the demo mount."""

import asyncio
import inspect
import json
import shutil
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.api import create_app
from app.api_chat import sse_turn
from app.db import Feedback
from app.factory import Mode
from app.schema import Message, Token

FAKE = Mode(fake_models=True)


@pytest.fixture()
def assistant(make_assistant):
    return make_assistant()


@pytest.fixture()
def client(settings, assistant):
    return TestClient(create_app(settings, FAKE, assistant=assistant), raise_server_exceptions=False)


def start(client, message="hi", **body):
    r = client.post("/api/v1/chat", json={"message": message, **body})
    assert r.status_code == 200, r.text
    data = r.json()
    return data["session_id"], data["session_token"], data


def sse_events(raw: str) -> list[tuple[str, dict]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


# ---- health, page, demo -------------------------------------------------------------------------
def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_fails_when_the_database_is_gone(settings, assistant):
    app = TestClient(create_app(settings, FAKE, assistant=assistant), raise_server_exceptions=False)
    assistant.c.sessions.engine.dispose()
    shutil.rmtree(settings.data_dir)  # SQLite cannot open a file in a directory that is gone
    r = app.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready" and "database" in r.json()["error"]


def test_shop_page_embeds_the_widget_and_links_the_staff_demo(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/widget/widget.js"' in page.text and 'href="/demo/"' in page.text
    js = client.get("/widget/widget.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/widget/widget.css").headers["content-type"].startswith("text/css")


def test_demo_page_is_served(client):
    r = client.get("/demo/")
    assert r.status_code == 200 and "gradio" in r.text.lower()


# ---- chat and sessions ----------------------------------------------------------------------------
def test_first_turn_issues_a_session_and_its_token(client):
    r = client.post("/api/v1/chat", json={"message": "talk to a human"})
    data = r.json()
    assert r.status_code == 200 and data["route"] == "human_handoff"
    assert data["session_id"].startswith("w-") and len(data["session_token"]) >= 40
    assert r.headers["X-Session-Token"] == data["session_token"]
    assert isinstance(data["turn_id"], int)


def test_later_turns_need_the_session_token_and_keep_state(client):
    sid, token, _ = start(client, "talk to a human")
    no_token = client.post("/api/v1/chat", json={"session_id": sid, "message": "yes"})
    assert no_token.status_code == 403 and "X-Session-Token" in no_token.json()["error"]
    wrong = client.post("/api/v1/chat", json={"session_id": sid, "message": "yes"},
                        headers={"X-Session-Token": "not-it"})
    assert wrong.status_code == 403
    r = client.post("/api/v1/chat", json={"session_id": sid, "message": "yes"}, headers={"X-Session-Token": token})
    assert r.status_code == 200 and r.json()["session_token"] is None  # no new token on later turns
    assert "open_handoff_ticket" in r.json()["actions"][0]


def test_a_client_chosen_session_id_works_once_then_needs_its_token(client):
    sid, _token, _ = start(client, "hi", session_id="web-1")
    assert sid == "web-1"
    assert client.post("/api/v1/chat", json={"session_id": "web-1", "message": "hi"}).status_code == 403


def test_sessions_started_elsewhere_cannot_be_taken_over(client, assistant):
    assistant.respond(Message("staff-demo-1", "hi", channel="demo"))  # no API token exists for it
    r = client.post("/api/v1/chat", json={"session_id": "staff-demo-1", "message": "hi"})
    assert r.status_code == 403 and "taken" in r.json()["error"]
    assert client.get("/api/v1/sessions/staff-demo-1", headers={"X-Session-Token": "x"}).status_code == 404


def test_order_status_reply_carries_the_order_card(client):
    sid, token, _ = start(client, "where is my order SD-20001?")
    r = client.post("/api/v1/chat", json={"session_id": sid, "message": "ada@example.com"},
                    headers={"X-Session-Token": token})
    card = r.json()["card"]
    assert r.json()["facts_kind"] == "order_status" and card["type"] == "order"
    assert card["order_id"] == "SD-20001" and card["status"] == "in_transit"
    assert card["tracking_number"] == "1Z999AA10123456784" and "Trail runner" in card["items_text"]
    assert card["items"] == [{"name": "Trail runner", "qty": 1}]
    labels = [step["label"] for step in card["timeline"]]
    assert labels[0] == "Order placed" and "Shipped with UPS" in labels and labels[-1] == "Expected delivery"


def test_no_card_before_verification(client):
    _, _, data = start(client, "where is my order SD-20001?")
    assert data["card"] is None and "1Z999AA10123456784" not in json.dumps(data)


def test_signed_customer_token_verifies_the_shopper(client, settings, assistant):
    from app.stats import sign_customer_token

    token = sign_customer_token(settings, "C900", assistant.c.clock.now())
    _, _, data = start(client, "where is my order SD-20001?", customer_token=token)
    assert data["verified"] is True and data["card"]["order_id"] == "SD-20001"
    _, _, forged = start(client, "where is my order SD-20001?", customer_token=token[:-4] + "AAAA")
    assert forged["verified"] is False and forged["card"] is None


# ---- streaming --------------------------------------------------------------------------------------
def test_stream_sends_session_then_tokens_then_the_reply(client):
    with client.stream("POST", "/api/v1/chat/stream", json={"message": "talk to a human"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "session" and names[-1] == "reply" and set(names[1:-1]) == {"token"}
    reply = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token") == reply["text"]
    session = events[0][1]
    assert session["session_id"] == reply["session_id"] and session["session_token"] == r.headers["X-Session-Token"]
    # the stream continues the same session with its token
    with client.stream("POST", "/api/v1/chat/stream", json={"session_id": session["session_id"], "message": "yes"},
                       headers={"X-Session-Token": session["session_token"]}) as r2:
        last = sse_events(r2.read().decode())[-1]
    assert last[0] == "reply" and "open_handoff_ticket" in last[1]["actions"][0]


def test_stream_without_the_session_token_is_refused_before_streaming(client):
    sid, _token, _ = start(client)
    r = client.post("/api/v1/chat/stream", json={"session_id": sid, "message": "hi"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/json"


def test_stream_stops_pulling_the_turn_when_the_client_leaves(assistant):
    turn = assistant.stream(Message("s-leaves", "how do returns work for shoes?", channel="widget"))
    checks = {"n": 0}
    seen: list[str] = []

    async def gone_after_first_token() -> bool:
        checks["n"] += 1
        return checks["n"] > 1

    left = []
    gone = threading.Event()

    async def run() -> None:
        async for chunk in sse_turn(turn, gone_after_first_token, gone, on_reply=seen.append,
                                    on_disconnect=lambda: left.append(1), on_error=lambda: None):
            seen.append(chunk)

    asyncio.run(run())
    assert len(seen) == 1 and seen[0].startswith("event: token")
    assert left == [1] and inspect.getgeneratorstate(turn) == inspect.GEN_CLOSED and gone.is_set()


def test_stream_reports_a_failed_turn_as_an_error_event():
    def broken():
        yield Token("Hel")
        raise RuntimeError("database went away")

    errors = []

    async def never() -> bool:
        return False

    async def run() -> list[str]:
        return [c async for c in sse_turn(broken(), never, threading.Event(), on_reply=lambda r: None,
                                          on_disconnect=lambda: None,
                                          on_error=lambda: errors.append(1))]

    chunks = asyncio.run(run())
    assert chunks[0].startswith("event: token") and chunks[-1].startswith("event: error")
    assert "database" not in chunks[-1] and "Traceback" not in chunks[-1] and errors == [1]


# ---- transcript and feedback --------------------------------------------------------------------------
def test_transcript_is_for_the_token_holder_only_and_masked(client):
    sid, token, _ = start(client, "where is my order SD-20001?")
    client.post("/api/v1/chat", json={"session_id": sid, "message": "ada@example.com"},
                headers={"X-Session-Token": token})
    r = client.get(f"/api/v1/sessions/{sid}", headers={"X-Session-Token": token})
    turns = r.json()["turns"]
    assert r.status_code == 200 and len(turns) == 2
    assert turns[1]["user"] == "a***@example.com" and turns[1]["card"]["order_id"] == "SD-20001"
    assert client.get(f"/api/v1/sessions/{sid}").status_code == 401
    assert client.get(f"/api/v1/sessions/{sid}", headers={"X-Session-Token": "nope"}).status_code == 404
    unknown = client.get("/api/v1/sessions/w-unknown", headers={"X-Session-Token": token})
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_feedback_is_stored_with_the_turn_and_the_latest_rating_wins(client, assistant):
    sid, token, first = start(client, "hi")
    auth = {"X-Session-Token": token}
    r = client.post("/api/v1/feedback", json={"session_id": sid, "rating": "up"}, headers=auth)
    assert r.status_code == 200 and r.json() == {"ok": True, "turn_id": first["turn_id"], "rating": "up"}
    r = client.post("/api/v1/feedback", json={"session_id": sid, "turn_id": first["turn_id"], "rating": "down",
                                              "comment": "mail me at ada@example.com", "channel": "widget"},
                    headers=auth)
    assert r.status_code == 200
    with Session(assistant.c.sessions.engine) as s:
        rows = s.scalars(select(Feedback)).all()
    assert [(f.turn_id, f.rating, f.comment, f.channel) for f in rows] == [
        (first["turn_id"], -1, "mail me at a***@example.com", "widget")]
    turns = client.get(f"/api/v1/sessions/{sid}", headers=auth).json()["turns"]
    assert turns[0]["rating"] == -1


def test_feedback_refuses_strangers_unknown_turns_and_bad_ratings(client, assistant):
    sid, token, _ = start(client, "hi")
    _other_sid, other_token, other = start(client, "hi")
    auth = {"X-Session-Token": token}
    assert client.post("/api/v1/feedback", json={"session_id": sid, "rating": "up"}).status_code == 404
    assert client.post("/api/v1/feedback", json={"session_id": sid, "rating": "up"},
                       headers={"X-Session-Token": other_token}).status_code == 404
    cross = client.post("/api/v1/feedback", json={"session_id": sid, "turn_id": other["turn_id"], "rating": "up"},
                        headers=auth)
    assert cross.status_code == 404 and "turn" in cross.json()["error"]
    bad = client.post("/api/v1/feedback", json={"session_id": sid, "rating": "meh"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "rating"
    with Session(assistant.c.sessions.engine) as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 0


# ---- error shapes -------------------------------------------------------------------------------------
def test_bad_json_and_bad_fields_get_clear_json_errors(client):
    r = client.post("/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/v1/chat", json={"session_id": "s1"})
    assert r.status_code == 422 and r.json()["details"] == [{"field": "message", "problem": "Field required"}]
    r = client.post("/api/v1/chat", json={"msg": "hi"})
    assert r.status_code == 422 and "msg" in r.json()["error"]
    r = client.post("/api/v1/chat", json={"session_id": "has spaces/and slashes", "message": "hi"})
    assert r.status_code == 422 and "session_id" in r.json()["error"]
    assert client.get("/api/v1/nothing-here").json() == {"error": "Not Found"}


def test_database_failures_answer_json_without_a_traceback(client, assistant):
    with assistant.c.sessions.engine.begin() as conn:
        conn.execute(text("DROP TABLE feedback"))
    sid, token, _ = start(client)
    r = client.post("/api/v1/feedback", json={"session_id": sid, "rating": "up"}, headers={"X-Session-Token": token})
    assert r.status_code == 500 and r.json() == {"error": "something went wrong on our side; please try again"}
    with assistant.c.sessions.engine.begin() as conn:
        conn.execute(text("DROP TABLE turns"))
    r = client.post("/api/v1/chat", json={"session_id": sid, "message": "hi"}, headers={"X-Session-Token": token})
    assert r.status_code == 503 and "try again" in r.json()["error"] and "Traceback" not in r.text
    assert "sqlite" not in r.text.lower()
