"""Streaming a turn: the model stops where the reply needs no more of it (an opener's first sentence),
and stops within a token once the shopper's stream is gone (a real server on loopback, a real client
that hangs up), while the turn is still stored with its template reply."""

from __future__ import annotations

import dataclasses
import threading
import time

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import create_app
from app.db import TurnRow
from app.errors import GeneratorBusy
from app.factory import Mode
from app.generator import LocalGenerator
from app.prompts import build_messages, reply_complete
from app.schema import Facts, Message
from app.timebox import Deadline, GenerationCancelled, generate_within

OPENER = build_messages(Facts(kind="faq_answer", route="faq"), "do gift cards expire?", (), "Fern & Field")
FULL = build_messages(Facts(kind="greeting", route="smalltalk"), "hello", (), "Fern & Field")


class Wordy:
    """Yields ``pieces`` one at a time, ``delay_s`` apart, until told to stop; records how it ended."""

    name = "wordy"
    uses_model = True

    def __init__(self, pieces: list[str], delay_s: float = 0.0, in_caller: bool = True) -> None:
        self.pieces, self.delay_s, self.decodes_in_caller = pieces, delay_s, in_caller
        self.sent = 0
        self.stopped = threading.Event()  # should_stop() was true
        self.closed = threading.Event()  # the stream was closed or ran out
        self.started = threading.Event()

    def warm_up(self) -> None:
        pass

    def stream(self, messages, max_new_tokens, should_stop):
        self.started.set()
        try:
            for piece in self.pieces:
                if should_stop():
                    self.stopped.set()
                    return
                time.sleep(self.delay_s)
                self.sent += 1
                yield piece
        finally:
            self.closed.set()


@pytest.mark.parametrize(("text", "done"), [
    ("Good question", False),
    ("Good question, here is how it works", False),
    ("Good question.", False),  # "." may still be "3.5": the next piece decides
    ("It costs 3.5", False),
    ("Good question. Here", True),
    ("Good question!\n", True),
    ("Sure thing\nMore", True),
])
def test_an_opener_is_complete_after_its_first_sentence(text, done):
    assert reply_complete(OPENER, text) is done


def test_a_full_reply_runs_to_the_models_own_end():
    assert reply_complete(FULL, "Hi there! How can I help you today?") is False


@pytest.mark.parametrize("in_caller", [True, False])
def test_decoding_stops_once_the_reply_is_complete(in_caller):
    gen = Wordy(["Happy", " to", " help", ".", " Our", " gift", " cards", " never", " expire", "."], delay_s=0.01,
                in_caller=in_caller)
    text = generate_within(gen, OPENER, 60, Deadline(10), complete=lambda t: reply_complete(OPENER, t))
    assert text == "Happy to help. Our"
    # not all 10 pieces: decoding stopped after the sentence (a helper thread may be one piece ahead)
    assert gen.closed.wait(2) and gen.sent <= 6


@pytest.mark.parametrize("in_caller", [True, False])
def test_a_cancelled_turn_stops_the_generator(in_caller):
    gen = Wordy(["very "] * 500, delay_s=0.01, in_caller=in_caller)
    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        generate_within(gen, OPENER, 500, Deadline(30), cancelled=lambda: time.monotonic() - started > 0.2)
    assert gen.stopped.wait(2) and gen.sent < 100


@pytest.fixture()
def live_server(settings, make_assistant, fake_models):
    """The real app (FastAPI + uvicorn) on a loopback port, with a slow generator that never ends a sentence."""
    slow = Wordy(["very "] * 2000, delay_s=0.01)
    models = dataclasses.replace(fake_models, generator=slow)
    assistant = make_assistant(models=models, generation_time_budget_s=30.0, retrieval_min_score=0.1)
    app = create_app(settings, Mode(fake_models=True), warm=False, assistant=assistant)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the test server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", slow, assistant
    server.should_exit = True
    thread.join(10)


def test_the_model_stops_when_the_shopper_hangs_up(live_server):
    base, slow, assistant = live_server
    with httpx.Client(base_url=base, timeout=10) as client:
        with client.stream("POST", "/api/v1/chat/stream", json={"message": "how long does shipping take"}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            assert next(lines) == "event: session"
            session_id = next(line for line in lines if line.startswith("data:"))
            assert slow.started.wait(5), "the turn never reached the model"
        # leaving the block closes the connection while the model is still writing
        hung_up = time.monotonic()
        assert slow.stopped.wait(5), "the model kept generating for a client that had gone"
        stopped_after = time.monotonic() - hung_up
        metrics = client.get("/metrics").text
    assert slow.sent < 1000, slow.sent  # 2000 pieces take 20 s; it stopped long before
    assert stopped_after < 2.0, stopped_after
    assert "shopdesk_stream_disconnects_total 1.0" in metrics
    # nothing the shopper said is lost: the turn is stored, with the template reply and the reason
    sid = session_id.split('"session_id": "')[1].split('"')[0]
    deadline = time.monotonic() + 5
    while not (turns := assistant.c.sessions.turns(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert turns and turns[-1]["user"] == "how long does shipping take"
    assert turns[-1]["generated_by"] == "template" and turns[-1]["reply"]
    with Session(assistant.c.sessions.engine) as s:
        stored = s.scalar(select(TurnRow.reply).where(TurnRow.id == turns[-1]["id"]))
    assert "cancelled" in stored["guard"]["reasons"]


def test_the_model_queue_is_bounded(tmp_path):
    """With the model busy and ``queue_max`` turns already waiting, the next turn is told at once."""
    gen = LocalGenerator("bundled", tmp_path, queue_max=2)  # nothing loads: only the queue is exercised
    release = threading.Event()
    assert gen._acquire(lambda: False)  # this turn generates
    outcomes: list[object] = []

    def wait() -> None:
        try:
            outcomes.append(gen._acquire(release.is_set))
        except GeneratorBusy as exc:
            outcomes.append(exc)

    waiters = [threading.Thread(target=wait) for _ in range(2)]
    for w in waiters:
        w.start()
    deadline = time.monotonic() + 5
    while gen._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(GeneratorBusy):
        gen._acquire(lambda: False)  # a third waiter: refused without waiting
    assert time.monotonic() - started < 0.5
    release.set()  # the two waiters give up (their budget), nobody got the model twice
    for w in waiters:
        w.join(5)
    assert outcomes == [False, False] and gen._waiting == 0
    gen._generate_lock.release()
    assert gen._acquire(lambda: False)  # free again: the next turn gets it at once
    gen._generate_lock.release()


def test_a_busy_model_gives_the_template_reply_at_once(make_assistant, fake_models):
    class Busy(Wordy):
        def stream(self, messages, max_new_tokens, should_stop):
            raise GeneratorBusy("3 turns already waiting for the model")
            yield ""

    a = make_assistant(models=dataclasses.replace(fake_models, generator=Busy([])))
    reply = a.respond(Message("s-busy", "hello"))
    assert reply.generated_by == "template" and reply.guard.reasons == ("busy",) and reply.text
