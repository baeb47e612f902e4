"""Batch classification: JSONL messages in, JSONL predictions out (``shopdesk classify``).

Each input line is an object with a ``text`` string. Each output line, in input order, is
``{"text", "intent", "route", "confidence", "entities"}``: the classifier's top fine intent, its
route (the top route after summing intent probabilities, as the router sees it), that route's
probability, and the entities found (order ids, emails, zips, phones). No gates are applied: those
belong to the router and the session. The CLI reads the input (``app.jsonl``) and checks every line
before anything is classified, so bad input produces no partial output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from intents.classifier import IntentClassifier
from intents.entities import EntityExtractor
from intents.errors import MessageFileError


def classify_records(texts: Sequence[str], classifier: IntentClassifier, extractor: EntityExtractor,
                     batch: int = 64, progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """``batch`` messages per classifier call (one encoder pass), results in input order."""
    if batch < 1:
        raise MessageFileError(f"batch size must be at least 1, not {batch}")
    for start in range(0, len(texts), batch):
        part = texts[start:start + batch]
        for text, prediction in zip(part, classifier.classify_batch(part), strict=True):
            route, p = prediction.route_ranking()[0]
            yield {"text": text, "intent": prediction.intent, "route": route, "confidence": round(p, 6),
                   "entities": {k: list(v) for k, v in asdict(extractor.extract(text)).items()}}
        if progress:
            progress(len(part))
