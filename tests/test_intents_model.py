"""The intent heads, lexical features, calibration, metrics and report (fast: hashing embedder, small data)."""

import json

import numpy as np
import pytest

from intents.calibration import choose_gate, fit_temperature, gate_curve
from intents.classifier import EmbeddingClassifier, Prediction, softmax
from intents.dataset import Example, load_training_data
from intents.labels import ROUTES
from intents.lexical import BUSINESS_TOKEN, LexicalFeaturizer, load_business_names
from intents.metrics import Gate, gate_report, route_report
from intents.report import write_report
from intents.train import BASELINE, DEFAULT, model_is_current, train
from knowledge_base.embedder import HashingEmbedder

PROBES = ["where is my parcel", "refund??", "what's the weather", "hi there", "CANCLE MY ORDER",
          "my zara order never came", "return the boots SD-10492", ""]


@pytest.fixture(scope="module")
def small_data() -> list[Example]:
    """15 examples of every intent: enough for the head to learn something, fast enough for unit tests."""
    out, seen = [], {}
    for e in load_training_data():
        if seen.get(e.intent, 0) < 15:
            out.append(e)
            seen[e.intent] = seen.get(e.intent, 0) + 1
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_data):
    """Both heads trained once on the small data (3 folds), keyed by kind."""
    models = {}
    for config in (BASELINE, DEFAULT):
        d = tmp_path_factory.mktemp(config.kind.replace("+", "-"))
        result = train(HashingEmbedder(), d, base_model="hashing", examples=small_data, config=config, folds=3,
                       progress=lambda _m: None, heldout=small_data[::4])
        models[config.kind] = (d, result)
    return models


@pytest.mark.parametrize("kind", ["embedding", "embedding+lexical"])
def test_reloaded_model_predicts_identically(trained, kind):
    directory, _ = trained[kind]
    emb = HashingEmbedder()
    first, second = EmbeddingClassifier.load(directory, emb), EmbeddingClassifier.load(directory, emb)
    assert first.kind == kind
    assert np.array_equal(first.probabilities(PROBES), second.probabilities(PROBES))
    assert first.classify_batch(PROBES) == second.classify_batch(PROBES)
    singles = [first.classify(t) for t in PROBES]  # batching changes no decision (only last float bits)
    assert [p.intent for p in singles] == [p.intent for p in first.classify_batch(PROBES)]
    assert np.allclose([p.confidence for p in singles], [p.confidence for p in first.classify_batch(PROBES)])


def test_saved_metadata_has_labels_base_model_hash_metrics_and_thresholds(trained, small_data):
    directory, result = trained["embedding+lexical"]
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["labels"] == sorted({e.intent for e in small_data}) and meta["base_model"] == "hashing"
    assert len(meta["data_hash"]) == 16 and meta["n_examples"] == len(small_data)
    assert meta["kind"] == "embedding+lexical" and meta["head"]["c"] == DEFAULT.c and meta["temperature"] > 0
    assert set(meta["thresholds"]) >= {"confidence_min", "margin_min", "validation_oos_recall",
                                       "validation_in_scope_rejected"}
    for split in ("cross_validation", "heldout"):
        m = meta["metrics"][split]
        assert set(m["per_route"]) == set(ROUTES) and 0 <= m["macro_f1"] <= 1
        assert {"oos_recall", "in_scope_rejected"} <= set(m["gate"])
    assert result.thresholds == meta["thresholds"] and (directory / "lexical.json").is_file()


def test_lexical_head_beats_the_hashing_baseline_on_cross_validation(trained):
    f1 = {k: r.metrics["cross_validation"]["macro_f1"] for k, (_, r) in trained.items()}
    assert f1["embedding+lexical"] > f1["embedding"], f1


def test_model_is_current_follows_the_data(trained, small_data):
    directory, _ = trained["embedding+lexical"]
    assert model_is_current(directory, small_data)
    assert not model_is_current(directory, [*small_data, Example("a brand new example", "faq.shipping")])
    assert not model_is_current(directory, small_data, BASELINE)
    assert not model_is_current(directory.parent / "nowhere", small_data)


def test_lexical_features_tolerate_typos_and_fold_business_names():
    texts = ["cancel my order", "where is my order", "my amazon order is late", "return policy please"]
    lex = LexicalFeaturizer.fit(texts, min_df=1, business_names=load_business_names())
    rows = lex.transform(["cancle my ordr", "my zara order is late", "my amazon order is late", "zzzz qqqq"])
    dense = rows.toarray()
    assert dense[0] @ lex.transform(["cancel my order"]).toarray()[0] > 0.4  # typos still share n-grams
    assert np.array_equal(dense[1], dense[2])  # another business is another business
    assert not dense[3].any()  # nothing known: no features
    assert lex.normalise("My H&M's refund via Amazon Prime") == f"My {BUSINESS_TOKEN} refund via {BUSINESS_TOKEN}"
    assert lex.normalise("paid with paypal, sent by ups") == "paid with paypal, sent by ups"
    again = LexicalFeaturizer.from_saved(json.loads(json.dumps(lex.to_json())), lex.arrays())
    assert np.array_equal(again.transform(texts).toarray(), lex.transform(texts).toarray())


def test_temperature_recovers_overconfident_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(4000, 5))
    y = np.array([rng.choice(5, p=p) for p in softmax(logits)])
    assert abs(fit_temperature(logits, y) - 1.0) < 0.15
    assert abs(fit_temperature(3 * logits, y) - 3.0) < 0.45


def test_gate_choice_meets_the_in_scope_budget_and_maximises_oos_recall():
    labels = ["faq.shipping", "order_status.where_is_order", "out_of_scope.other"]
    rng = np.random.default_rng(1)
    in_scope = rng.dirichlet([8, 1, 1], size=300)  # mostly confident faq
    oos_missed = rng.dirichlet([2, 2, 1.5], size=100)  # unsure, top is often an in-scope intent
    probs = np.vstack([in_scope, oos_missed])
    routes = ["faq"] * 300 + ["out_of_scope"] * 100
    gate, info = choose_gate(probs, labels, routes)
    assert info["validation_in_scope_rejected"] <= 0.03
    curve = gate_curve(probs, labels, routes)
    best = curve[curve[:, 3] <= 0.03][:, 2].max()
    assert info["validation_oos_recall"] == pytest.approx(best)
    assert gate.confidence_min > 0 or gate.margin_min > 0  # some gate beats none here
    preds = [Prediction(labels[int(np.argmax(p))], "faq", float(p.max()), tuple(zip(labels, p, strict=True)))
             for p in probs]
    assert gate_report(preds, routes, gate)["oos_recall"] == pytest.approx(info["validation_oos_recall"])


def test_route_report_by_hand():
    true = ["faq", "faq", "faq", "returns", "out_of_scope"]
    pred = ["faq", "faq", "returns", "returns", "faq"]
    r = route_report(true, pred)
    assert r["per_route"]["faq"] == {"precision": 2 / 3, "recall": 2 / 3, "f1": pytest.approx(2 / 3), "support": 3}
    assert r["per_route"]["returns"]["precision"] == 0.5 and r["per_route"]["returns"]["recall"] == 1.0
    assert r["per_route"]["out_of_scope"]["f1"] == 0.0
    assert r["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3) and r["accuracy"] == 0.6
    assert sum(map(sum, r["confusion"]["matrix"])) == 5


def test_gate_report_counts_rejections():
    def pred(route_probs):
        ranking = tuple(sorted(((f"{r}.x", p) for r, p in route_probs.items()), key=lambda kv: -kv[1]))
        return Prediction(ranking[0][0], ranking[0][0].split(".")[0], ranking[0][1], ranking)

    preds = [pred({"faq": 0.9, "returns": 0.1}), pred({"faq": 0.5, "returns": 0.45, "out_of_scope": 0.05}),
             pred({"out_of_scope": 0.8, "faq": 0.2}), pred({"faq": 0.7, "out_of_scope": 0.3})]
    r = gate_report(preds, ["faq", "returns", "out_of_scope", "out_of_scope"], Gate(0.6, 0.1))
    assert r["in_scope_rejected"] == 0.5 and r["oos_recall"] == 0.5 and r["oos_routed_out_of_scope"] == 0.5


def test_report_writes_tables_confusion_png_and_latency(trained, tmp_path):
    directory, _ = trained["embedding+lexical"]
    model = EmbeddingClassifier.load(directory, HashingEmbedder())
    report = write_report(tmp_path / "rep", model.meta, model, PROBES)
    for split in ("cross_validation", "heldout"):
        assert (tmp_path / "rep" / f"confusion_{split}.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert all(f"| {r} |" in md for r in ROUTES) and "p95" in md
    assert report["latency"]["p95_ms"] >= report["latency"]["p50_ms"] > 0
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["model"]["data_hash"] == model.meta["data_hash"]


def test_old_baseline_models_still_load(tmp_path, trained):
    """A model saved before lexical features (no kind, no temperature) loads as the embedding head."""
    directory, _ = trained["embedding"]
    meta = json.loads((directory / "meta.json").read_text())
    for key in ("kind", "temperature"):
        meta.pop(key)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "head.npz").write_bytes((directory / "head.npz").read_bytes())
    model = EmbeddingClassifier.load(tmp_path, HashingEmbedder())
    assert model.kind == "embedding" and model.temperature == 1.0


def test_speed_only_bench_measures_a_saved_model(trained, tmp_path, capsys):
    from evals.bench_intents import main

    model_dir, _ = trained["embedding+lexical"]
    out = tmp_path / "speed.json"
    assert main(["--speed-only", str(model_dir), "--fake-models", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["latency"]["n"] == 300 and 0 < report["latency"]["p50_ms"] <= report["latency"]["p95_ms"]
    assert report["throughput"]["msgs_per_s"] > 0 and set(report["meets_targets"]) == {"p95_ms", "msgs_per_s"}
    assert main(["--speed-only", str(tmp_path / "none"), "--fake-models"]) == 2  # no model there: a clear error
