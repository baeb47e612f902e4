"""The real bundled models end to end (MiniLM classifier + index, SmolLM2 generator). Run by CI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.schema import Message
from intents.dataset import load_heldout, load_training_data

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def test_classifier_generalises_to_the_heldout_split(real_models):
    heldout = load_heldout(exclude=load_training_data())
    preds = real_models.classifier.classify_batch([e.text for e in heldout])
    accuracy = sum(p.route == e.route for p, e in zip(preds, heldout, strict=True)) / len(heldout)
    assert accuracy >= 0.90, accuracy  # issue 3 raises the bar (macro-F1 >= 0.95)


def test_dense_retrieval_finds_the_right_article(real_models):
    hits = real_models.index.query(real_models.embedder.embed(["can I pay with paypal"])[0], 3)
    assert "payment-methods" in {h.doc_id for h in hits}


def test_generator_streams_text_and_the_guard_decides(real_models):
    pieces = list(real_models.generator.stream(
        [{"role": "user", "content": "Say hello to a customer in one short sentence."}], 12, lambda: False))
    assert len(pieces) >= 2 and "".join(pieces).strip()


def test_whole_conversation_with_real_models(make_assistant, real_models):
    a = make_assistant(models=real_models)
    r = a.respond(Message("s", "hi"))
    assert r.route == "smalltalk"
    r = a.respond(Message("s", "where is my order SD-20001?"))
    assert r.route == "order_status" and not r.verified
    r = a.respond(Message("s", "ada@example.com"))
    assert r.verified and "SD-20001" in r.text and "in transit" in r.text
    assert set(r.timings) >= {"classify", "route", "handler", "generate", "total"}


# The transcript suite with the real models, its report and the regression gate: tests/test_evals_integration.py


def test_cli_ask_json_runs_the_full_pipeline(real_settings, real_models):
    env_data = str(real_settings.data_dir)
    from app.db import make_engine, migrate
    from app.seed import seed_database

    engine = make_engine(real_settings.resolved_database_url)
    migrate(engine)
    seed_database(engine, customers=10, orders=30, replace=True)
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", env_data, "ask", "where is SD-10002 ada.park@example.com",
         "--session", "cli-1", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "SHOPDESK_GENERATOR": "template",
             "SHOPDESK_MODEL_CACHE_DIR_OVERRIDE": str(real_settings.model_cache_dir)},
    )
    reply = json.loads(out.stdout)
    assert reply["route"] == "order_status" and reply["verified"] is True
    assert "SD-10002" in reply["text"] and set(reply) >= {"text", "intent", "confidence", "route", "sources",
                                                          "actions", "verified", "timings"}
