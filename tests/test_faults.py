"""Faults (issue 10), each injected for real: a generator that raises, hangs inside a token or cannot be
reached; a FAQ index that is missing, damaged or whose server is down; a SQLite database another
connection has locked, or whose storage is gone for a while. The shopper always gets a clear reply,
never a traceback, and the session carries on once the part is back."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import smalltalk, templates
from app.api import create_app
from app.db import TurnRow
from app.errors import ModelError
from app.factory import Mode, Models, build_index, faq_index, load_models
from app.generator import OpenAIGenerator
from app.schema import Message, Reply
from knowledge_base.errors import IndexUnavailableError

FAQ_QUESTION = "how long does shipping take"


def say(assistant, text: str, session: str = "s1") -> Reply:
    return assistant.respond(Message(session, text, client_id="10.0.0.1"))


def greeting_template(assistant) -> str:
    return templates.render(smalltalk.smalltalk("smalltalk.greeting", assistant.settings.shop_name))


def with_generator(models: Models, generator) -> Models:
    return Models(models.embedder, models.classifier, generator, models.index)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- (a) the generator -------------------------------------------------------------------------------
class RaisingGenerator:
    name = "raising"
    uses_model = True

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def warm_up(self) -> None:
        pass

    def stream(self, messages, max_new_tokens, should_stop):
        raise self.exc
        yield  # a generator function, like the real ones


class HangingGenerator:
    """Blocks inside its first token until released, ignoring ``should_stop`` (a stuck call)."""

    name = "hanging"
    uses_model = True

    def __init__(self) -> None:
        self.entered, self.release, self.finished = threading.Event(), threading.Event(), threading.Event()

    def warm_up(self) -> None:
        pass

    def stream(self, messages, max_new_tokens, should_stop):
        self.entered.set()
        self.release.wait(120)
        self.finished.set()
        yield "Hi there! I am a reply that arrived far too late."


@pytest.mark.parametrize("exc", [ModelError("CUDA out of memory"), RuntimeError("boom"), KeyError("choices")],
                         ids=["model_error", "runtime_error", "a_bug"])
def test_a_generator_that_raises_gives_the_template_reply(make_assistant, fake_models, exc):
    a = make_assistant(models=with_generator(fake_models, RaisingGenerator(exc)))
    r = say(a, "hi")
    assert r.route == "smalltalk" and r.generated_by == "template"
    assert r.text == greeting_template(a) and r.guard.reasons == ("model_error",)
    assert say(a, "hello again").generated_by == "template"  # the session goes on


def test_a_generator_that_hangs_inside_a_token_does_not_hang_the_turn(make_assistant, fake_models):
    gen = HangingGenerator()
    a = make_assistant(models=with_generator(fake_models, gen), generation_time_budget_s=0.3)
    try:
        r = say(a, "hi")
        # the turn came back while the generator was still stuck in its first token
        assert not gen.finished.is_set() and gen.entered.wait(30)
        assert r.text == greeting_template(a) and r.generated_by == "template" and r.guard.reasons == ("timeout",)
        with Session(a.c.sessions.engine) as s:
            assert s.scalar(select(func.count()).select_from(TurnRow)) == 1  # answered and stored
    finally:
        gen.release.set()


def test_an_unreachable_generation_server_gives_the_template_reply(make_assistant, fake_models):
    gen = OpenAIGenerator(f"http://127.0.0.1:{closed_port()}/v1", model="smol")
    a = make_assistant(models=with_generator(fake_models, gen))
    r = say(a, "hi")
    assert r.text == greeting_template(a) and r.generated_by == "template" and r.guard.reasons == ("model_error",)


@pytest.fixture()
def silent_server():
    """A loopback 'generation server' that accepts the request and then says nothing until released."""
    listener = socket.create_server(("127.0.0.1", 0))
    release, accepted = threading.Event(), threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            accepted.set()
            with conn:
                conn.recv(65536)
                release.wait(120)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], accepted, release
    release.set()
    listener.close()


def test_a_generation_server_that_goes_silent_gives_the_template_reply_in_budget(make_assistant, fake_models,
                                                                                  silent_server):
    port, accepted, release = silent_server
    gen = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", model="smol", timeout_s=60)
    a = make_assistant(models=with_generator(fake_models, gen), generation_time_budget_s=0.5)
    r = say(a, "hi")
    # the budget ended the turn, not the client's 60 s read timeout: the server still holds the request
    assert not release.is_set() and accepted.wait(30)
    assert r.text == greeting_template(a) and r.generated_by == "template" and r.guard.reasons == ("timeout",)


# ---- (b) the FAQ index -------------------------------------------------------------------------------
def garble(chroma_dir: Path) -> None:
    db = chroma_dir / "chroma.sqlite3"
    db.write_bytes(os.urandom(db.stat().st_size))


@pytest.fixture()
def index_fault(request, settings, fake_models):
    """Models whose FAQ index is broken the way the test names: never built in the data dir (the folder
    deleted before the process opened it), damaged after it worked, or on a Chroma server that is down."""
    kind, emb = request.param, fake_models.embedder
    if kind == "missing":
        s = settings.replace(chroma_path=str(settings.data_dir / "chroma-deleted"))
    elif kind == "server_down":
        s = settings.replace(chroma_host="127.0.0.1", chroma_port=closed_port())
    else:
        s = settings
        build_index(s, emb)
    return kind, Models(emb, fake_models.classifier, fake_models.generator, faq_index(s, emb)), s


@pytest.mark.parametrize("index_fault", ["missing", "damaged", "server_down"], indirect=True)
def test_without_a_usable_index_the_faq_says_so_and_offers_a_person_and_orders_still_work(make_assistant,
                                                                                          index_fault):
    kind, models, s = index_fault
    a = make_assistant(models=models, retrieval_min_score=0.1)
    if kind == "damaged":
        assert say(a, FAQ_QUESTION, session="before").facts_kind == "faq_answer"  # it did work
        garble(s.resolved_chroma_path)

    r = say(a, FAQ_QUESTION)
    assert r.route == "faq" and r.facts_kind == "faq_unavailable"
    assert r.text == templates.render(a.c.faq.handle(FAQ_QUESTION)) and "can't search our help centre" in r.text
    assert r.handoff and "Talk to a person" in r.choices and not r.sources
    # the person it offers is one message away, and order lookups do not need the index
    assert say(a, "yes, talk to a person").route == "human_handoff"
    r = say(a, "where is my order SD-20001?", session="orders")
    assert r.route == "order_status" and "email" in r.text.lower()
    r = say(a, "ada@example.com", session="orders")
    assert r.verified and "in transit" in r.text


def test_starting_on_a_damaged_index_fails_with_how_to_rebuild(settings, fake_models):
    build_index(settings, fake_models.embedder)
    garble(settings.resolved_chroma_path)
    with pytest.raises(IndexUnavailableError, match="shopdesk index"):
        load_models(settings, Mode(fake_models=True))


# ---- (c) the database --------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(db_file: Path):
    """Another connection holds an exclusive transaction (in WAL mode others may still read; every
    write waits for it, then fails with "database is locked")."""
    holder = sqlite3.connect(db_file, isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield holder
    finally:
        holder.close()  # ends its transaction and the lock


class OnRetry(logging.Handler):
    """Runs ``action`` when app.retry announces its first retry: the fault ends during the backoff."""

    def __init__(self, action) -> None:
        super().__init__(logging.WARNING)
        self.action, self.retries = action, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1
            if self.retries == 1:
                self.action()


FAST_RETRY = {"db_busy_timeout_s": 0.05, "db_retry_attempts": 3, "db_retry_base_delay_s": 0.01}


def db_file(assistant) -> Path:
    return Path(assistant.c.sessions.engine.url.database)


def turn_count(assistant) -> int:
    with Session(assistant.c.sessions.engine) as s:
        return s.scalar(select(func.count()).select_from(TurnRow))


def test_a_locked_database_is_retried_then_the_shopper_is_told_to_try_again(make_assistant, caplog):
    a = make_assistant(**FAST_RETRY)
    assert "email" in say(a, "where is my order SD-20001?").text.lower()
    caplog.set_level(logging.WARNING, logger="app.retry")
    with locked(db_file(a)):
        r = say(a, "hi")  # reads work under the lock; saving the turn has to wait for it
        retries = [m for m in caplog.messages if "save turn failed" in m and "retrying" in m]
        assert len(retries) == 2 and any("giving up" in m for m in caplog.messages)  # 3 attempts in all
        # a handler's own write (the verification attempt) under the lock: the same clear reply
        r2 = say(a, "ada@example.com")
    for reply in (r, r2):
        assert reply.text == templates.STORE_UNAVAILABLE and reply.facts_kind == "store_unavailable"
        assert not reply.verified and "Traceback" not in reply.text and "locked" not in reply.text
    assert turn_count(a) == 1  # the failed turns stored nothing
    # the lock is gone: the same session picks up where it was (still waiting for the email)
    r = say(a, "ada@example.com")
    assert r.verified and "in transit" in r.text and turn_count(a) == 2


def test_a_lock_released_during_the_backoff_costs_the_shopper_nothing(make_assistant):
    a = make_assistant(**FAST_RETRY)
    lock = locked(db_file(a))
    lock.__enter__()
    release = OnRetry(lambda: lock.__exit__(None, None, None))
    logging.getLogger("app.retry").addHandler(release)
    try:
        r = say(a, "hi")
    finally:
        logging.getLogger("app.retry").removeHandler(release)
    assert release.retries == 1 and r.text == greeting_template(a) and turn_count(a) == 1


def test_a_database_that_is_briefly_gone_gets_a_clear_message_then_works_again(make_assistant, settings):
    a = make_assistant(**FAST_RETRY)
    say(a, "where is my order SD-20001?")
    away = settings.data_dir.with_name("data-away")
    a.c.sessions.engine.dispose()  # the connections are lost with it
    settings.data_dir.rename(away)
    try:
        r = say(a, "ada@example.com")
        assert r.text == templates.STORE_UNAVAILABLE and r.route == "unavailable"
    finally:
        away.rename(settings.data_dir)
    r = say(a, "ada@example.com")
    assert r.verified and "in transit" in r.text


def test_the_api_answers_a_locked_database_with_a_clear_503_and_the_session_survives(make_assistant, settings):
    a = make_assistant(**FAST_RETRY)
    client = TestClient(create_app(settings, Mode(fake_models=True), warm=False, assistant=a),
                        raise_server_exceptions=False)
    first = client.post("/api/v1/chat", json={"message": "where is my order SD-20001?"}).json()
    headers = {"X-Session-Token": first["session_token"]}
    body = {"session_id": first["session_id"], "message": "ada@example.com"}
    with locked(db_file(a)):
        answers = [client.post("/api/v1/chat", json=body, headers=headers),  # the turn cannot be stored
                   client.post("/api/v1/chat", json={"message": "hi"})]  # a new session cannot be opened
    for r in answers:
        assert r.status_code == 503 and r.json() == {"error": templates.STORE_UNAVAILABLE}
        assert r.headers["Retry-After"] and "Traceback" not in r.text
    r = client.post("/api/v1/chat", json=body, headers=headers)
    assert r.status_code == 200 and r.json()["verified"] and "in transit" in r.json()["text"]
