"""Loading the intent training data (``intents/data/*.yaml``) and the held-out test split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from intents.labels import INTENTS, route_of

DATA_DIR = Path(__file__).parent / "data"
HELDOUT_FILE = Path(__file__).parent / "testset" / "heldout.yaml"


@dataclass(frozen=True)
class Example:
    text: str
    intent: str

    @property
    def route(self) -> str:
        return route_of(self.intent)


class DatasetError(ValueError):
    pass


def load_training_data(directory: Path = DATA_DIR) -> list[Example]:
    """Every example of every ``<intent>.yaml``; the file's ``intent`` must be a known intent."""
    examples: list[Example] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise DatasetError(f"no training files in {directory}")
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        intent = doc.get("intent")
        if intent not in INTENTS:
            raise DatasetError(f"{path}: intent {intent!r} is not one of intents.labels.INTENTS")
        texts = doc.get("examples") or []
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise DatasetError(f"{path}: every example must be a non-empty string")
        examples.extend(Example(t.strip(), intent) for t in texts)
    return examples


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def load_heldout(path: Path = HELDOUT_FILE, exclude: list[Example] | None = None) -> list[Example]:
    """The independent test split: never used for training or threshold selection.

    Written separately from the training data, it still shares some short stock phrases ("hi",
    "where is my order"); pass the training examples as ``exclude`` to score only unseen messages.
    """
    if not path.is_file():
        return []
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out = []
    for i, item in enumerate(items):
        if item.get("intent") not in INTENTS or route_of(item["intent"]) != item.get("route"):
            raise DatasetError(f"{path}: item {i} has a bad intent/route: {item}")
        out.append(Example(str(item["text"]), item["intent"]))
    seen = {normalise(e.text) for e in exclude or []}
    return [e for e in out if normalise(e.text) not in seen]


def data_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: (e.intent, e.text)):
        h.update(f"{ex.intent}\t{ex.text}\n".encode())
    return h.hexdigest()[:16]
