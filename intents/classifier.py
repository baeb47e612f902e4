"""Intent classifiers: one protocol, a trained embedding classifier and a keyword fake.

``EmbeddingClassifier`` = a sentence encoder (injected; the bundled MiniLM in production), optionally
TF-IDF character/word n-grams (``intents.lexical``), and a multinomial logistic-regression head stored
as plain arrays (``head.npz``, ``lexical.json``) with its metadata (``meta.json``). Predictions are
computed with numpy from the stored arrays, so a reloaded model predicts exactly what the saved one
did. Thresholds are NOT applied here: the router gates.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from intents.labels import route_of
from intents.lexical import VOCAB_FILE, LexicalFeaturizer

HEAD_FILE = "head.npz"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Prediction:
    intent: str
    route: str
    confidence: float  # probability of the top intent
    ranking: tuple[tuple[str, float], ...] = ()  # (intent, probability), best first

    def route_ranking(self) -> tuple[tuple[str, float], ...]:
        """Probabilities summed per route, best first (the router gates on routes, not intents)."""
        scores: dict[str, float] = defaultdict(float)
        for intent, p in self.ranking:
            scores[route_of(intent)] += p
        return tuple(sorted(scores.items(), key=lambda kv: -kv[1]))


class TextEncoder(Protocol):
    """Anything that turns texts into L2-normalised vectors (knowledge_base.embedder provides them)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class IntentClassifier(Protocol):
    def classify(self, text: str) -> Prediction: ...

    def classify_batch(self, texts: Sequence[str]) -> list[Prediction]: ...


def prediction_from(labels: Sequence[str], probs: np.ndarray, keep: int | None = None) -> Prediction:
    """The Prediction of one probability row; the ranking keeps every label unless ``keep`` says fewer,
    so route sums (the router's gates) see all the probability mass."""
    order = np.argsort(-probs, kind="stable")[:keep]
    ranking = tuple((labels[i], float(probs[i])) for i in order)
    top = ranking[0][0]
    return Prediction(intent=top, route=route_of(top), confidence=ranking[0][1], ranking=ranking)


class EmbeddingClassifier:
    """Encoder embeddings (+ optional lexical n-grams) -> softmax((W x + b) / T).

    The baseline is embeddings only; with a ``LexicalFeaturizer`` the same linear head also reads
    TF-IDF character and word n-grams (``intents.lexical``). ``temperature`` is fitted on held-back
    training folds so that ``confidence`` means what the router's gate assumes it means.
    Load with ``EmbeddingClassifier.load(dir, encoder)``.
    """

    def __init__(self, encoder: TextEncoder, labels: Sequence[str], coef: np.ndarray,
                 intercept: np.ndarray, meta: dict[str, Any] | None = None,
                 lexical: LexicalFeaturizer | None = None, lexical_coef: np.ndarray | None = None,
                 temperature: float = 1.0) -> None:
        if coef.ndim != 2 or coef.shape[0] != len(labels) or intercept.shape != (len(labels),):
            raise ValueError(f"head shape {coef.shape}/{intercept.shape} does not fit {len(labels)} labels")
        if (lexical is None) != (lexical_coef is None) or (
                lexical is not None and lexical_coef.shape != (len(labels), lexical.dim)):  # type: ignore[union-attr]
            raise ValueError("lexical features and their weights must come together and fit the labels")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
        self.encoder = encoder
        self.labels = tuple(labels)
        self.coef = coef
        self.intercept = intercept
        self.lexical = lexical
        self.lexical_coef = lexical_coef
        self.temperature = float(temperature)
        self.meta = dict(meta or {})

    @property
    def kind(self) -> str:
        return "embedding+lexical" if self.lexical is not None else "embedding"

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        x = self.encoder.embed(list(texts)).astype(np.float64)
        z = x @ self.coef.T + self.intercept
        if self.lexical is not None:
            z = z + np.asarray(self.lexical.transform(texts) @ self.lexical_coef.T)  # type: ignore[union-attr]
        return z

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)

    def classify(self, text: str) -> Prediction:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        return [prediction_from(self.labels, p) for p in self.probabilities(texts)]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": self.coef, "intercept": self.intercept}
        if self.lexical is not None:
            arrays |= {"lexical_coef": self.lexical_coef, **self.lexical.arrays()}  # type: ignore[dict-item]
            self.lexical.save(directory)
        else:
            (directory / VOCAB_FILE).unlink(missing_ok=True)
        np.savez(directory / HEAD_FILE, **arrays)
        meta = {**self.meta, "labels": list(self.labels), "kind": self.kind, "temperature": self.temperature}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, encoder: TextEncoder) -> EmbeddingClassifier:
        head, meta_path = directory / HEAD_FILE, directory / META_FILE
        if not head.is_file() or not meta_path.is_file():
            raise FileNotFoundError(f"no intent model in {directory} (run `shopdesk train`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(head) as npz:
            arrays = {k: npz[k] for k in npz.files}
        lexical = lexical_coef = None
        if meta.get("kind") == "embedding+lexical":
            if not LexicalFeaturizer.saved_in(directory):
                raise FileNotFoundError(f"{directory} has an embedding+lexical head but no {VOCAB_FILE}: retrain")
            lexical = LexicalFeaturizer.from_saved(LexicalFeaturizer.load_spec(directory), arrays)
            lexical_coef = arrays["lexical_coef"]
        return cls(encoder, meta["labels"], arrays["coef"], arrays["intercept"], meta, lexical, lexical_coef,
                   float(meta.get("temperature", 1.0)))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class KeywordClassifier:
    """Deterministic fake for fast tests: the intent whose keywords occur most in the text."""

    DEFAULT_KEYWORDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "order_status.where_is_order": ("where is", "my order", "track", "arrive", "package", "parcel", "status"),
        "returns.start_return": ("return", "send back", "send it back"),
        "returns.exchange": ("exchange", "different size", "swap"),
        "returns.refund_status": ("refund",),
        "cancel_order.cancel": ("cancel",),
        "faq.shipping": ("shipping", "ship to", "delivery time", "deliver to"),
        "faq.payment": ("pay", "payment", "invoice", "card"),
        "faq.returns_policy": ("return policy", "how many days"),
        "faq.account": ("password", "account", "login", "log in"),
        "faq.promotions": ("discount", "promo", "coupon", "gift card"),
        "faq.warranty": ("warranty", "broken", "defect"),
        "faq.product": ("size", "material", "in stock"),
        "faq.contact": ("opening hours", "phone number", "contact"),
        "human_handoff.agent": ("human", "agent", "person", "representative"),
        "human_handoff.complaint": ("ridiculous", "terrible", "complaint", "worst"),
        "smalltalk.greeting": ("hi", "hello", "hey", "good morning"),
        "smalltalk.thanks": ("thanks", "thank you", "cheers"),
        "smalltalk.goodbye": ("bye", "goodbye", "see you"),
        "smalltalk.ack": ("got it", "makes sense", "noted", "sounds good", "cool"),
    }
    FALLBACK = "out_of_scope.other"

    def __init__(self, keywords: dict[str, tuple[str, ...]] | None = None) -> None:
        self.keywords = keywords or self.DEFAULT_KEYWORDS
        self.labels = (*tuple(self.keywords), self.FALLBACK)

    def classify(self, text: str) -> Prediction:
        lowered = " " + re.sub(r"[^a-z0-9# ]+", " ", text.lower()) + " "
        hits = np.array(
            [sum(lowered.count(f" {k} ") * len(k) for k in self.keywords.get(label, ())) for label in self.labels],
            dtype=np.float64,
        )
        if hits.sum() == 0:
            hits[-1] = 1.0
        probs = (hits + 0.01) / (hits + 0.01).sum()
        return prediction_from(self.labels, probs)

    def classify_batch(self, texts: Sequence[str]) -> list[Prediction]:
        return [self.classify(t) for t in texts]
