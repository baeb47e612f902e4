"""Training and reloading the intent classifier; a reloaded model predicts exactly the same."""

import numpy as np

from intents.classifier import EmbeddingClassifier, KeywordClassifier
from intents.dataset import load_heldout, load_training_data, normalise
from intents.labels import INTENTS, ROUTES, route_of
from intents.train import train
from knowledge_base.embedder import HashingEmbedder


def test_training_data_covers_every_intent():
    examples = load_training_data()
    counts = {i: sum(e.intent == i for e in examples) for i in INTENTS}
    assert min(counts.values()) >= 40, counts
    assert counts["out_of_scope.other"] >= 400
    texts = [e.text.lower() for e in examples]
    assert len(texts) == len(set(texts))


def test_heldout_split_is_separate_from_training():
    training = load_training_data()
    train_texts = {normalise(e.text) for e in training}
    assert len(load_heldout()) >= 700
    heldout = load_heldout(exclude=training)  # what metrics are computed on: messages never trained on
    assert len(heldout) >= 500
    assert {e.route for e in heldout} == set(ROUTES)
    assert not [e.text for e in heldout if normalise(e.text) in train_texts]


def test_saved_model_reloads_with_identical_predictions(tmp_path):
    emb = HashingEmbedder()
    result = train(emb, tmp_path / "m", base_model="hashing", progress=lambda _m: None)
    assert set(result.labels) == set(INTENTS)
    texts = ["where is my parcel", "refund??", "what's the weather", "hi there"]
    model = EmbeddingClassifier.load(tmp_path / "m", emb)
    again = EmbeddingClassifier.load(tmp_path / "m", emb)
    assert model.classify_batch(texts) == again.classify_batch(texts)
    assert np.array_equal(model.probabilities(texts), again.probabilities(texts))
    assert model.meta["base_model"] == "hashing" and model.meta["data_hash"]


def test_keyword_fake_is_deterministic_and_maps_to_routes():
    k = KeywordClassifier()
    p = k.classify("where is my order")
    assert p.route == "order_status" and p == k.classify("where is my order")
    assert route_of(k.classify("blah").intent) == "out_of_scope"
