"""Time as a dependency: the real clock, or a frozen one for evals and tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)  # naive UTC everywhere in the database


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.at = at.replace(tzinfo=None) if at.tzinfo else at

    def now(self) -> datetime:
        return self.at
