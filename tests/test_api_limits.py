"""The API's guards: request size limit, per-client rate limit, CORS from the allowed-origins setting."""

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.factory import Mode
from app.ratelimit import RateLimiter, retry_after

FAKE = Mode(fake_models=True)
SHOP = "https://shop.example"


@pytest.fixture()
def make_client(settings, make_assistant):
    def make(**overrides) -> TestClient:
        s = settings.replace(**overrides)
        return TestClient(create_app(s, FAKE, assistant=make_assistant(**overrides)), raise_server_exceptions=False)

    return make


# ---- request size ------------------------------------------------------------------------------------
def test_oversize_body_with_content_length_gets_a_json_413(make_client):
    client = make_client(max_request_bytes=2048)
    r = client.post("/api/v1/chat", json={"message": "x" * 3000})
    assert r.status_code == 413 and "larger than 2048 bytes" in r.json()["error"]
    assert client.post("/api/v1/chat", json={"message": "x" * 1500}).status_code == 200
    assert 'shopdesk_errors_total{kind="too_large"} 1.0' in client.get("/metrics").text


def test_oversize_chunked_body_without_content_length_gets_a_json_413(make_client):
    client = make_client(max_request_bytes=2048)

    def chunks():
        yield b'{"message": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    r = client.post("/api/v1/chat", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413 and "larger than 2048 bytes" in r.json()["error"]


def test_the_size_limit_applies_to_the_api_only(make_client):
    client = make_client(max_request_bytes=1024)
    r = client.post("/demo/gradio_api/info", content=b"z" * 5000)  # Gradio's own routes decide for themselves
    assert r.status_code != 413


# ---- rate limit ----------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(rate_limit_per_minute=3)
    codes = [client.post("/api/v1/chat", json={"message": "hi"}).status_code for _ in range(3)]
    r = client.post("/api/v1/chat", json={"message": "hi"})
    assert codes == [200, 200, 200] and r.status_code == 429
    assert "too many requests" in r.json()["error"] and int(r.headers["Retry-After"]) >= 1
    # the whole shopper API shares the bucket; health checks and metrics do not count
    assert client.get("/api/v1/sessions/x", headers={"X-Session-Token": "t"}).status_code == 429
    assert client.get("/healthz").status_code == 200
    assert 'shopdesk_errors_total{kind="rate_limited"} 2.0' in client.get("/metrics").text


def test_rate_limit_zero_turns_it_off(make_client):
    client = make_client(rate_limit_per_minute=0)
    assert {client.post("/api/v1/chat", json={"message": "hi"}).status_code for _ in range(5)} == {200}


def test_token_bucket_refills_at_the_configured_rate_per_client():
    now = [1000.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.hit("a") == 0.0 and limiter.hit("a") == 0.0
    wait = limiter.hit("a")
    assert wait == pytest.approx(30.0) and retry_after(wait) == 30
    assert limiter.hit("b") == 0.0  # another client has its own bucket
    now[0] += 29.0
    assert limiter.hit("a") > 0.0
    now[0] += 2.0
    assert limiter.hit("a") == 0.0
    now[0] += 3600.0  # a long pause refills to the burst size, not beyond
    assert [limiter.hit("a") == 0.0 for _ in range(3)] == [True, True, False]


# ---- CORS ------------------------------------------------------------------------------------------------
def test_cors_preflight_from_an_allowed_origin(make_client):
    client = make_client(allowed_origins=f"{SHOP}, https://www.shop.example")
    r = client.options("/api/v1/chat/stream", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-session-token"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    assert "x-session-token" in r.headers["access-control-allow-headers"].lower()
    r = client.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": SHOP})
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "x-session-token" in r.headers["access-control-expose-headers"].lower()


def test_cors_refuses_other_origins(make_client):
    client = make_client(allowed_origins=SHOP)
    r = client.options("/api/v1/chat", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "POST"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = client.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_without_allowed_origins_no_cross_origin_access(make_client):
    client = make_client()
    r = client.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": SHOP})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_error_answers_carry_cors_headers_so_the_widget_can_read_them(make_client):
    client = make_client(allowed_origins=SHOP, rate_limit_per_minute=1, max_request_bytes=1024)
    client.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": SHOP})
    limited = client.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": SHOP})
    too_big = client.post("/api/v1/chat", json={"message": "x" * 2000}, headers={"Origin": SHOP})
    assert limited.status_code == 429 and limited.headers["access-control-allow-origin"] == SHOP
    assert too_big.status_code == 413 and too_big.headers["access-control-allow-origin"] == SHOP
