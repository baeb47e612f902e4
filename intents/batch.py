"""Batch classification: JSONL messages in, JSONL predictions out (``shopdesk classify``).

Each input line is an object with a ``text`` string. Each output line, in input order, is
``{"text", "intent", "route", "confidence", "entities"}``: the classifier's top fine intent, its
route (the top route after summing intent probabilities, as the router sees it), that route's
probability, and the entities found (order ids, emails, zips, phones). No gates are applied: those
belong to the router and the session. Every line is checked before anything is classified, so bad
input produces no partial output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from intents.classifier import IntentClassifier
from intents.entities import EntityExtractor
from intents.errors import MessageFileError

MAX_REPORTED = 10  # bad lines listed in one error


def read_messages(lines: Iterable[str], source: str = "input") -> list[str]:
    texts, problems = [], []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            problems.append(f'line {n}: expected an object with a non-empty "text" string, got {line.strip()[:80]}')
            continue
        texts.append(obj["text"])
    if problems:
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise MessageFileError(f"{source}: {len(problems)} bad line(s), nothing was classified "
                               f'(each line must be like {{"text": "where is my order?"}}):\n  '
                               + "\n  ".join(problems[:MAX_REPORTED]) + more)
    return texts


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
