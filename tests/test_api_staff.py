"""Staff endpoints behind the staff token, the stats they and the demo's stats tab show, Prometheus
metrics, and the OpenAPI documentation (served without a CDN)."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.config import load_settings
from app.errors import ConfigError
from app.factory import Mode
from app.stats import StaffQueries, StaffStats, percentile
from app.ui import label_faq, stats_markdown, unanswered_series
from knowledge_base.labels import LABELS_FILE
from tests.conftest import NOW

FAKE = Mode(fake_models=True)
STAFF = "staff-token-for-tests-0123456789"
BEARER = {"Authorization": f"Bearer {STAFF}"}
UNKNOWN_FAQ = "how long does shipping take to Canada?"  # beyond the hashing embedder's relevance floor


@pytest.fixture()
def assistant(make_assistant):
    return make_assistant(staff_token=STAFF)


@pytest.fixture()
def client(settings, assistant):
    return TestClient(create_app(settings.replace(staff_token=STAFF), FAKE, assistant=assistant),
                      raise_server_exceptions=False)


def turn(client, message, sid=None, token=None):
    body = {"message": message, **({"session_id": sid} if sid else {})}
    r = client.post("/api/v1/chat", json=body, headers={"X-Session-Token": token} if token else {})
    assert r.status_code == 200, r.text
    data = r.json()
    return data["session_id"], token or data["session_token"], data


def three_conversations(client):
    """One answered by the bot, one handed to a person (ticket), one the FAQ could not answer."""
    a, a_tok, _ = turn(client, "hi")
    b, b_tok, _ = turn(client, "talk to a human")
    turn(client, "yes", b, b_tok)
    _, _, unknown = turn(client, UNKNOWN_FAQ)
    assert unknown["facts_kind"] == "faq_unknown"
    client.post("/api/v1/feedback", json={"session_id": a, "rating": "up"}, headers={"X-Session-Token": a_tok})
    client.post("/api/v1/feedback", json={"session_id": b, "rating": "down"}, headers={"X-Session-Token": b_tok})


# ---- auth -------------------------------------------------------------------------------------------------
def test_staff_endpoints_need_the_staff_token(client):
    for path in ("/api/v1/staff/stats", "/api/v1/staff/handoffs", "/api/v1/staff/sessions/x"):
        r = client.get(path)
        assert r.status_code == 401 and "Bearer" in r.json()["error"] and r.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert client.get("/api/v1/staff/handoffs", headers=BEARER).status_code == 200


def test_staff_api_is_off_without_a_configured_token(settings, make_assistant):
    client = TestClient(create_app(settings, FAKE, assistant=make_assistant()))
    r = client.get("/api/v1/staff/stats", headers={"Authorization": "Bearer anything-at-all-here"})
    assert r.status_code == 503 and "SHOPDESK_STAFF_TOKEN" in r.json()["error"]


def test_staff_token_comes_from_the_environment_only(tmp_path, monkeypatch):
    (tmp_path / "shopdesk.toml").write_text(f'staff_token = "{STAFF}"\n')
    with pytest.raises(ConfigError, match="SHOPDESK_STAFF_TOKEN"):
        load_settings(tmp_path / "shopdesk.toml")
    monkeypatch.setenv("SHOPDESK_STAFF_TOKEN", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        load_settings(data_dir=str(tmp_path))
    monkeypatch.setenv("SHOPDESK_STAFF_TOKEN", STAFF)
    assert load_settings(data_dir=str(tmp_path)).staff_token == STAFF


def test_demo_asks_for_a_login_when_a_staff_token_is_set(client):
    r = client.get("/demo/config")
    assert r.status_code == 401 and r.json()["detail"]["error"] == "Not authenticated"
    wrong = client.post("/demo/login", data={"username": "staff", "password": "guess-guess-guess"})
    assert wrong.status_code >= 400
    assert client.post("/demo/login", data={"username": "staff", "password": STAFF}).status_code == 200
    assert client.get("/demo/config").status_code == 200


# ---- stats and tickets ------------------------------------------------------------------------------------
def test_stats_count_containment_handoffs_thumbs_latency_and_unanswered(client):
    three_conversations(client)
    st = client.get("/api/v1/staff/stats", params={"days": 1}, headers=BEARER).json()
    assert (st["conversations"], st["turns"], st["contained"], st["handed_off"]) == (3, 4, 1, 1)
    assert st["containment_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert st["handoff_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (st["thumbs_up"], st["thumbs_down"], st["thumbs_up_rate"]) == (1, 1, 0.5)
    assert set(st["latency_ms"]) == {"p50", "p90", "p95", "p99"} and st["latency_ms"]["p50"] is not None
    assert [u["question"] for u in st["unanswered"]] == [UNKNOWN_FAQ]
    assert st["unanswered_per_day"] == [{"day": NOW.date().isoformat(), "questions": 1}]


def test_stats_respect_the_period(client):
    three_conversations(client)
    later = (NOW + timedelta(days=1)).isoformat()
    empty = client.get("/api/v1/staff/stats", params={"since": later}, headers=BEARER)
    assert empty.status_code == 422 and "before" in empty.json()["error"]
    r = client.get("/api/v1/staff/stats", params={"since": (NOW - timedelta(days=3)).isoformat(),
                                                  "until": (NOW - timedelta(days=2)).isoformat()}, headers=BEARER)
    assert r.json()["conversations"] == 0 and r.json()["containment_rate"] is None
    bad = client.get("/api/v1/staff/stats", params={"days": -1}, headers=BEARER)
    assert bad.status_code == 422 and "days" in bad.json()["error"]


def test_handoff_tickets_and_any_transcript_for_staff(client):
    three_conversations(client)
    tickets = client.get("/api/v1/staff/handoffs", headers=BEARER).json()["tickets"]
    assert len(tickets) == 1 and tickets[0]["id"].startswith("HT-") and tickets[0]["status"] == "open"
    transcript = client.get(f"/api/v1/staff/sessions/{tickets[0]['session_id']}", headers=BEARER).json()
    assert [t["user"] for t in transcript["turns"]] == ["talk to a human", "yes"]
    assert client.get("/api/v1/staff/sessions/nope", headers=BEARER).status_code == 404


def test_staff_can_sign_a_customer_token_that_the_chat_accepts(client):
    r = client.post("/api/v1/staff/customer-token", json={"customer_id": "C900", "minutes": 10}, headers=BEARER)
    token = r.json()["customer_token"]
    data = client.post("/api/v1/chat", json={"message": "where is my order SD-20001?",
                                             "customer_token": token}).json()
    assert data["verified"] is True and data["card"]["order_id"] == "SD-20001"
    missing = client.post("/api/v1/staff/customer-token", json={"customer_id": "C404"}, headers=BEARER)
    assert missing.status_code == 404


def test_stats_tab_text_and_percentiles(assistant):
    st = StaffQueries(assistant.c.sessions.engine).stats(NOW - timedelta(days=1), NOW + timedelta(seconds=1))
    text = stats_markdown(st)
    assert "Conversations | 0" in text and "n/a" in text
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0 and percentile([1.0, 2.0], 99) == 2.0
    assert percentile([], 50) is None


# ---- metrics and docs ---------------------------------------------------------------------------------------
def test_metrics_in_prometheus_text_format(client):
    three_conversations(client)
    client.post("/api/v1/chat", content=b"{oops", headers={"content-type": "application/json"})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    for line in ('shopdesk_turns_total{channel="api",route="smalltalk"} 1.0',
                 'shopdesk_turns_total{channel="api",route="human_handoff"} 2.0',
                 'shopdesk_turns_total{channel="api",route="faq"} 1.0',
                 'shopdesk_handoffs_total{kind="ticket"} 1.0',
                 'shopdesk_handoffs_total{kind="offered"} 2.0',
                 'shopdesk_guard_outcomes_total{outcome="template"} 4.0',
                 'shopdesk_feedback_total{rating="up"} 1.0',
                 'shopdesk_errors_total{kind="bad_json"} 1.0',
                 'shopdesk_turn_stage_seconds_count{stage="total"} 4.0',
                 'shopdesk_turn_stage_seconds_count{stage="classify"} 4.0'):
        assert line in body, line


def test_openapi_lists_every_endpoint_and_docs_need_no_cdn(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/chat", "/api/v1/chat/stream", "/api/v1/sessions/{session_id}", "/api/v1/feedback",
                 "/api/v1/staff/stats", "/api/v1/staff/handoffs", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_unanswered_chart_has_every_day_of_the_period_and_weeks_beyond_a_month():
    st = StaffStats(since=NOW - timedelta(days=6), until=NOW,
                    unanswered_per_day=[{"day": "2026-03-13", "questions": 2}, {"day": "2026-03-15", "questions": 1}])
    series = unanswered_series(st)
    assert [d["day"] for d in series] == ["Mar 9", "Mar 10", "Mar 11", "Mar 12", "Mar 13", "Mar 14", "Mar 15"]
    assert [d["questions"] for d in series] == [0, 0, 0, 0, 2, 0, 1]
    weekly = unanswered_series(StaffStats(since=NOW - timedelta(days=60), until=NOW,
                                          unanswered_per_day=st.unanswered_per_day))
    assert weekly[0]["day"] == "week of Jan 14" and len(weekly) == 9 and sum(d["questions"] for d in weekly) == 3


# ---- FAQ labels ---------------------------------------------------------------------------------------------
def test_a_label_is_kept_with_the_passages_sections_and_listed(client, settings):
    assert client.get("/api/v1/staff/faq-labels").status_code == 401
    assert client.post("/api/v1/staff/faq-labels", json={"question": "x", "answerable": False}).status_code == 401
    assert client.get("/api/v1/staff/faq-labels", headers=BEARER).json() == {"labels": []}
    question = "how long do you keep my chat history"
    r = client.post("/api/v1/staff/faq-labels", json={"question": f"  {question} ", "answerable": False},
                    headers=BEARER)
    assert r.status_code == 200, r.text
    body = r.json()
    label = body["label"]
    assert label["text"] == question and label["answerable"] is False and label["at"].startswith("2026-")
    assert label["sections"] and all(len(s) == 2 and s[0] for s in label["sections"])  # the hits' (article, heading)
    assert set(body["decision"]) >= {"answerable", "reason", "probability"}  # what the FAQ decides now
    assert client.get("/api/v1/staff/faq-labels", headers=BEARER).json() == {"labels": [label]}
    assert (settings.data_dir / LABELS_FILE).read_text().count("\n") == 1  # in the data dir: outlives a restart


def test_a_label_is_kept_masked_like_the_staff_panel_shows_questions(client, settings):
    question = "can you email my invoice to ada.park@example.com or call 555-201-7788"
    r = client.post("/api/v1/staff/faq-labels", json={"question": question, "answerable": True}, headers=BEARER)
    assert r.status_code == 200, r.text
    kept = (settings.data_dir / LABELS_FILE).read_text()
    assert "ada.park@example.com" not in kept and "555-201-7788" not in kept and "a***@example.com" in kept
    assert r.json()["label"]["text"].startswith("can you email my invoice to a***@example.com")


@pytest.mark.parametrize("body", [{"question": "   ", "answerable": False}, {"question": "a"},
                                  {"question": "a", "answerable": "perhaps"},
                                  {"question": "a", "answerable": True, "docs": ["x"]},
                                  {"question": "a" * 501, "answerable": True}])
def test_a_malformed_label_is_refused_and_nothing_is_kept(client, settings, body):
    r = client.post("/api/v1/staff/faq-labels", json=body, headers=BEARER)
    assert r.status_code == 422, r.text
    assert not (settings.data_dir / LABELS_FILE).exists()


def test_labels_are_refused_when_the_labelled_questions_are_off(make_assistant, settings):
    assistant = make_assistant(staff_token=STAFF, retrieval_precedents="none")
    client = TestClient(create_app(settings.replace(staff_token=STAFF, retrieval_precedents="none"), FAKE,
                                   assistant=assistant), raise_server_exceptions=False)
    r = client.post("/api/v1/staff/faq-labels", json={"question": "a", "answerable": False}, headers=BEARER)
    assert r.status_code == 409 and "SHOPDESK_RETRIEVAL_PRECEDENTS=none" in r.json()["error"]
    assert client.get("/api/v1/staff/faq-labels", headers=BEARER).json() == {"labels": []}


def test_the_demo_label_buttons_keep_the_last_faq_question(make_assistant, settings):
    assistant = make_assistant()
    assert "Ask the FAQ something first" in label_faq(assistant, "", False)
    note = label_faq(assistant, UNKNOWN_FAQ, False)
    assert note.startswith(f'Labelled "{UNKNOWN_FAQ}" as not answered by the help centre. The FAQ now: declined')
    assert "answered by the help centre" in label_faq(assistant, UNKNOWN_FAQ, True)
    assert [x["answerable"] for x in TestClient(create_app(settings.replace(staff_token=STAFF), FAKE,
                                                          assistant=assistant)).get(
        "/api/v1/staff/faq-labels", headers=BEARER).json()["labels"]] == [False, True]
    off = make_assistant(fixtures={}, retrieval_precedents="none")  # the same database, already filled
    assert "Labels are off" in label_faq(off, UNKNOWN_FAQ, False)
