"""What staff see about how the assistant is doing over a period (the demo's stats tab, the staff API).

- conversations: sessions with at least one turn in the period
- containment: the share of those in which no human was offered, asked for or handed the chat
- handoff rate: the share of those with a handoff ticket
- thumbs-up rate: thumbs up / all thumbs given in the period
- latency percentiles: whole-turn time of the period's turns
- unanswered: questions the FAQ could not answer (facts kind ``faq_unknown``), newest first, and per day
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import tokens
from app.config import Settings
from app.db import Customer, Feedback, HandoffTicket, TurnRow

PERCENTILES = (50, 90, 95, 99)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every number shown is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class StaffStats:
    since: datetime
    until: datetime
    conversations: int = 0
    turns: int = 0
    contained: int = 0
    handed_off: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    unanswered: list[dict[str, str]] = field(default_factory=list)  # {at, question}, newest first
    unanswered_per_day: list[dict[str, Any]] = field(default_factory=list)  # {day, questions}

    @property
    def containment_rate(self) -> float | None:
        return _rate(self.contained, self.conversations)

    @property
    def handoff_rate(self) -> float | None:
        return _rate(self.handed_off, self.conversations)

    @property
    def thumbs_up_rate(self) -> float | None:
        return _rate(self.thumbs_up, self.thumbs_up + self.thumbs_down)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"], d["until"] = self.since.isoformat(), self.until.isoformat()
        d.update(containment_rate=self.containment_rate, handoff_rate=self.handoff_rate,
                 thumbs_up_rate=self.thumbs_up_rate)
        return d


class StaffQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def stats(self, since: datetime, until: datetime, unanswered_limit: int = 200) -> StaffStats:
        in_period = (TurnRow.at >= since) & (TurnRow.at <= until)  # until inclusive: "up to now" includes now
        with Session(self.engine) as s:
            turns = s.execute(select(TurnRow.session_id, TurnRow.latency_ms,
                                     TurnRow.reply["handoff"].as_boolean()).where(in_period)).all()
            sessions = {t[0] for t in turns}
            offered = {t[0] for t in turns if t[2]}
            tickets = set(s.scalars(select(HandoffTicket.session_id).where(
                HandoffTicket.session_id.in_(select(TurnRow.session_id).where(in_period)))))
            unknown = s.execute(select(TurnRow.at, TurnRow.user_text).where(in_period)
                                .where(TurnRow.facts_kind == "faq_unknown").order_by(TurnRow.at.desc())).all()
            ratings = Counter(s.scalars(select(Feedback.rating).where(Feedback.created_at >= since)
                                        .where(Feedback.created_at <= until)))
        latencies = [t[1] for t in turns]
        per_day = Counter(at.date().isoformat() for at, _q in unknown)
        return StaffStats(
            since=since, until=until, conversations=len(sessions), turns=len(turns),
            contained=len(sessions - offered - tickets), handed_off=len(tickets),
            thumbs_up=ratings.get(1, 0), thumbs_down=ratings.get(-1, 0),
            latency_ms={f"p{p}": percentile(latencies, p) for p in PERCENTILES},
            unanswered=[{"at": at.isoformat(timespec="minutes"), "question": q}
                        for at, q in unknown[:unanswered_limit]],
            unanswered_per_day=[{"day": d, "questions": n} for d, n in sorted(per_day.items())],
        )

    def handoff_tickets(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest tickets first (summaries are PII-masked when the ticket is opened)."""
        with Session(self.engine) as s:
            rows = s.scalars(select(HandoffTicket).order_by(HandoffTicket.created_at.desc()).limit(limit)).all()
            return [{"id": t.id, "created_at": t.created_at.isoformat(timespec="minutes"), "status": t.status,
                     "session_id": t.session_id, "customer_id": t.customer_id or "", "summary": t.summary}
                    for t in rows]

    def customers(self, limit: int = 25) -> list[tuple[str, str]]:
        """(customer id, name) of the first customers, for the demo's "act as customer"."""
        with Session(self.engine) as s:
            return [(c.id, c.name) for c in s.scalars(select(Customer).order_by(Customer.id).limit(limit))]

    def has_customer(self, customer_id: str) -> bool:
        with Session(self.engine) as s:
            return s.get(Customer, customer_id) is not None


def sign_customer_token(settings: Settings, customer_id: str, now: datetime, minutes: int = 30) -> str:
    """A signed customer token as the shop's site would make it (staff "act as customer")."""
    secret = tokens.load_secret(settings.customer_token_secret, settings.data_dir)
    return tokens.sign(customer_id, now + timedelta(minutes=minutes), secret)
