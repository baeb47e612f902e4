"""Staff corrections of the FAQ's answer-or-decline decision, kept as labelled questions.

A support agent who sees the assistant answer a question the help centre does not answer ("how long do
you keep my chat history"), or decline one it does, labels the question. The label joins the labelled
questions the answerability rule remembers (knowledge_base/precedents.py) at the next decision of every
process that shares the data dir, so the next shopper who asks the same gap in other words is told so.
Labels are appended to one JSON-lines file in the data dir (``LABELS_FILE``), never rewritten: a later
label of the same question overrides an earlier one.

Each label keeps the sections (article id, heading) of the passages it was judged against: the
precedents speak for questions whose hits lie in sections they were labelled against, and a label
makes its sections known (a question about an imported FAQ pair, once labelled, gets precedents too).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge_base.errors import KnowledgeBaseError

LABELS_FILE = "faq_labels.jsonl"
MAX_TEXT = 500  # characters of a labelled question, as a chat message is limited
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaqLabel:
    text: str
    answerable: bool
    sections: tuple[tuple[str, str], ...] = ()  # (article id, heading) of the passages judged against
    at: str = ""  # when (ISO, UTC)

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise KnowledgeBaseError("a labelled question needs its text")
        if len(self.text) > MAX_TEXT:
            raise KnowledgeBaseError(f"a labelled question is at most {MAX_TEXT} characters")

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "answerable": self.answerable, "sections": [list(s) for s in self.sections],
                "at": self.at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaqLabel:
        sections = tuple((str(d), str(s)) for d, s in data.get("sections") or ())
        answerable = data.get("answerable")
        if not isinstance(answerable, bool):
            raise KnowledgeBaseError("answerable must be true or false")
        return cls(str(data.get("text") or ""), answerable, sections, str(data.get("at") or ""))


class LabelStore:
    """The labels file: appended under an exclusive lock (several server processes may label at once),
    read from a byte offset so that a process reads only what was added since it last looked."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, label: FaqLabel) -> None:
        line = (json.dumps(label.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_from(self, offset: int = 0) -> tuple[list[FaqLabel], int]:
        """The labels of the whole lines after byte ``offset``, and the offset after the last whole line (a
        line still being written is read next time). A malformed line is logged and skipped."""
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], 0
        end = data.rfind(b"\n") + 1
        labels = []
        for n, raw in enumerate(data[:end].splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                labels.append(FaqLabel.from_dict(json.loads(raw)))
            except (ValueError, KnowledgeBaseError, TypeError, AttributeError) as exc:
                log.warning("%s: skipped a malformed label (line %d after byte %d): %s", self.path, n, offset, exc)
        return labels, offset + end

    def all(self) -> list[FaqLabel]:
        return self.read_from(0)[0]
