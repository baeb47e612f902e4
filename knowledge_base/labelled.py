"""The labelled shopper questions (``questions/*.yaml``): the retrieval benchmark's ground truth.

A question with ``docs`` is answerable (any listed article answers it); one without is not answered
anywhere in the knowledge base and must be declined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge_base.errors import KnowledgeBaseError

QUESTIONS_DIR = Path(__file__).parent / "questions"
_KEYS = {"text", "docs"}
FIRST = "first"  # the writer of the un-prefixed files (answerable.yaml, unanswerable.yaml)


@dataclass(frozen=True)
class LabelledQuestion:
    text: str
    docs: tuple[str, ...]  # every article that answers it, best first; () = not answerable
    source: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.docs)

    @property
    def writer(self) -> str:
        """The set it belongs to, one per person who wrote questions: ``blind2`` for a question of
        blind2_answerable.yaml, ``first`` for one of answerable.yaml (the un-prefixed files)."""
        stem = self.source.split()[0].removesuffix(".yaml")
        return stem.split("_")[0] if "_" in stem else FIRST


def writer_sets(questions: Sequence[LabelledQuestion]) -> list[str]:
    """The writers' sets in the order they were written: the first, then the others by name, numbers read
    as numbers (blind2 before blind10)."""
    names = {q.writer for q in questions}
    return [FIRST] * (FIRST in names) + sorted(names - {FIRST}, key=_natural)


def _natural(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def load_questions(directory: Path = QUESTIONS_DIR) -> list[LabelledQuestion]:
    out: list[LabelledQuestion] = []
    for path in sorted(directory.glob("*.yaml")):
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(items, list):
            raise KnowledgeBaseError(f"{path}: expected a list of {{text, docs}} items")
        for n, item in enumerate(items, start=1):
            where = f"{path.name} item {n}"
            if not isinstance(item, dict) or set(item) - _KEYS or not str(item.get("text") or "").strip():
                raise KnowledgeBaseError(f"{where}: expected {{text: ..., docs: [...]}}, got {item!r}")
            docs = item.get("docs") or []
            if not isinstance(docs, list) or not all(isinstance(d, str) and d for d in docs):
                raise KnowledgeBaseError(f"{where}: docs must be a list of article ids")
            out.append(LabelledQuestion(str(item["text"]).strip(), tuple(docs), where))
    return out
