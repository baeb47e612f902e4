"""The kept intent model with the real bundled MiniLM: the issue's quality targets on the independent test
split, the app's default gates, reload identity, and `shopdesk train --report`. Speed is benchmarked by
evals/bench_intents.py, never asserted here."""

import json

import numpy as np
import pytest

from app.cli import main
from app.config import Settings
from intents.classifier import EmbeddingClassifier
from intents.dataset import load_heldout, load_training_data
from intents.metrics import Gate, evaluate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def heldout_eval(real_models):
    heldout = load_heldout(exclude=load_training_data())
    preds = real_models.classifier.classify_batch([e.text for e in heldout])
    return preds, [e.route for e in heldout]


def test_kept_model_meets_the_targets_with_the_apps_default_gates(real_models, heldout_eval):
    assert real_models.classifier.kind == "embedding+lexical"
    defaults = Settings()
    report = evaluate(*heldout_eval, Gate(defaults.intent_confidence_min, defaults.intent_margin_min))
    assert report["n"] >= 500
    assert report["macro_f1"] >= 0.95, report["per_route"]
    assert report["gate"]["oos_recall"] >= 0.90, report["gate"]
    assert report["gate"]["in_scope_rejected"] <= 0.03, report["gate"]


def test_default_gates_are_the_calibrated_ones(real_models):
    """app/config.py carries the gates `shopdesk train` chose on validation data; retraining may move them."""
    chosen = real_models.classifier.meta["thresholds"]
    defaults = Settings()
    assert abs(chosen["confidence_min"] - defaults.intent_confidence_min) <= 0.05, chosen
    assert abs(chosen["margin_min"] - defaults.intent_margin_min) <= 0.05, chosen
    assert chosen["validation_in_scope_rejected"] <= 0.03


def test_other_shops_and_unrelated_requests_are_out_of_scope(real_models):
    texts = ["my amazon package never arrived can you refund it", "cancel my netflix subscription",
             "what's the weather in paris tomorrow", "write me a python function to sort a list"]
    assert [p.route for p in real_models.classifier.classify_batch(texts)] == ["out_of_scope"] * 4
    ours = ["where is my fern and field order SD-10492", "can you cancel my order",
            "i want to return the boots", "do you ship to canada"]
    assert [p.route for p in real_models.classifier.classify_batch(ours)] == [
        "order_status", "cancel_order", "returns", "faq"]


def test_reloaded_real_model_predicts_identically(real_settings, real_models, heldout_eval):
    again = EmbeddingClassifier.load(real_settings.resolved_intent_model_dir, real_models.embedder)
    texts = ["where is my parcel", "refund??", "my zara order never came", "CANCLE MY ORDER PLS"]
    assert np.array_equal(again.probabilities(texts), real_models.classifier.probabilities(texts))
    assert again.classify_batch(texts) == real_models.classifier.classify_batch(texts)


def test_cli_train_report(tmp_path, capsys):
    report_dir = tmp_path / "report"
    assert main(["--data-dir", str(tmp_path / "data"), "train", "--report", str(report_dir)]) == 0
    assert "calibrated gates" in capsys.readouterr().out
    report = json.loads((report_dir / "report.json").read_text())
    meta = report["model"]
    assert meta["kind"] == "embedding+lexical" and meta["base_model"] == "all-MiniLM-L6-v2" and meta["data_hash"]
    assert meta["metrics"]["heldout"]["macro_f1"] >= 0.95
    assert set(meta["metrics"]["heldout"]["per_route"]["faq"]) == {"precision", "recall", "f1", "support"}
    assert report["latency"]["p95_ms"] > 0
    for split in ("cross_validation", "heldout"):
        assert (report_dir / f"confusion_{split}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "data" / "intent_model" / "lexical.json").is_file()
