"""Shopdesk's OpenAI-compatible model server, driven over real HTTP on loopback by OpenAIGenerator."""

import threading
import time

import httpx
import pytest

from app.errors import ModelError
from app.generator import OpenAIGenerator
from app.model_server import ModelServer


class EchoModel:
    """A stand-in model: streams the last user message back word by word, slowly."""

    name = "echo"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.stopped_early = threading.Event()

    def warm_up(self) -> None:
        pass

    def generate(self, messages, max_new_tokens, should_stop, on_text):
        words = messages[-1]["content"].split()[:max_new_tokens]
        for i, w in enumerate(words):
            if should_stop():
                self.stopped_early.set()
                return
            on_text(w if i == 0 else " " + w)
            time.sleep(self.delay)


@pytest.fixture()
def server():
    def start(model):
        srv = ModelServer(model, port=0, queue_size=2)
        ready = threading.Event()
        thread = threading.Thread(target=srv.serve_forever, args=(ready,), daemon=True)
        thread.start()
        assert ready.wait(10)
        started.append((srv, thread))
        return srv

    started: list = []
    yield start
    for srv, thread in started:
        srv.stop()
        thread.join(10)


def test_streaming_through_the_openai_client(server):
    srv = server(EchoModel())
    gen = OpenAIGenerator(f"http://127.0.0.1:{srv.port}/v1", model="echo")
    pieces = list(gen.stream([{"role": "user", "content": "your order has shipped"}], 10, lambda: False))
    assert "".join(pieces) == "your order has shipped" and len(pieces) == 4


def test_non_streaming_and_models_and_health(server):
    srv = server(EchoModel())
    base = f"http://127.0.0.1:{srv.port}"
    r = httpx.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": "a b c"}],
                                                          "max_tokens": 2})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "a b"
    assert httpx.get(f"{base}/v1/models").json()["data"][0]["id"] == "echo"
    assert httpx.get(f"{base}/health").json()["status"] == "ok"


@pytest.mark.parametrize("body", [{}, {"messages": []}, {"messages": [{"role": "x", "content": "hi"}]},
                                  {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}])
def test_bad_requests_get_400_with_a_message(server, body):
    srv = server(EchoModel())
    r = httpx.post(f"http://127.0.0.1:{srv.port}/v1/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["message"]
    bad = httpx.post(f"http://127.0.0.1:{srv.port}/v1/chat/completions", content=b"{nope")
    assert bad.status_code == 400


def test_client_that_goes_away_stops_the_decoding(server):
    model = EchoModel(delay=0.05)
    srv = server(model)
    text = " ".join(f"w{i}" for i in range(200))
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 200, "stream": True}
    with httpx.stream("POST", f"http://127.0.0.1:{srv.port}/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and "w3" in line:
                break  # leave after a few tokens
    assert model.stopped_early.wait(10)


def test_unreachable_server_is_a_model_error():
    gen = OpenAIGenerator("http://127.0.0.1:9/v1", timeout_s=1)
    with pytest.raises(ModelError):
        list(gen.stream([{"role": "user", "content": "hi"}], 5, lambda: False))


def test_stop_callback_ends_the_client_stream(server):
    srv = server(EchoModel(delay=0.01))
    gen = OpenAIGenerator(f"http://127.0.0.1:{srv.port}/v1")
    got: list[str] = []
    for piece in gen.stream([{"role": "user", "content": "one two three four five six"}], 10,
                            lambda: len(got) >= 2):
        got.append(piece)
    assert len(got) == 2
