"""The web app over the Assistant (fakes): health, chat API, and the Gradio demo page."""

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.factory import Mode, build_index, embedder


@pytest.fixture()
def client(settings):
    mode = Mode(fake_models=True)
    build_index(settings, embedder(settings, mode))
    return TestClient(create_app(settings, mode))


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"


def test_chat_api_returns_the_reply_and_keeps_session_state(client):
    r = client.post("/api/v1/chat", json={"session_id": "web-1", "message": "talk to a human"})
    assert r.status_code == 200 and r.json()["route"] == "human_handoff"
    r = client.post("/api/v1/chat", json={"session_id": "web-1", "message": "yes"})
    assert r.json()["actions"] and "open_handoff_ticket" in r.json()["actions"][0]


def test_bad_requests_get_clear_errors(client):
    assert client.post("/api/v1/chat", json={"message": "hi"}).status_code == 422
    assert client.post("/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422


def test_demo_page_is_served(client):
    r = client.get("/demo/")
    assert r.status_code == 200 and "gradio" in r.text.lower()
