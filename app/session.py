"""Persistence of sessions and turns. Only the orchestrator calls ``save``.

Every method is one transaction, retried on transient database failures (``app.retry``); after the
last attempt it raises ``StoreUnavailableError`` and the orchestrator tells the shopper to try again.
A retried ``save_turn`` is safe: a failed attempt committed nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Feedback, SessionRow, TurnRow
from app.pii import mask, mask_all
from app.retry import RetryPolicy, db_retry
from app.schema import Reply, SessionState


class SessionRepository:
    def __init__(self, engine: Engine, retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()

    @db_retry("load session")
    def load(self, session_id: str) -> SessionState:
        with Session(self.engine) as s:
            row = s.get(SessionRow, session_id)
            return SessionState.from_dict(row.state) if row else SessionState(session_id=session_id)

    @db_retry("save turn")
    def save_turn(self, state: SessionState, user_text: str, reply: Reply, now: datetime) -> int:
        """Persist the new session state and the turn in one transaction; returns the turn id."""
        with Session(self.engine) as s, s.begin():
            row = s.get(SessionRow, state.session_id)
            stored = _stored_state(state)
            if row is None:
                row = SessionRow(id=state.session_id, state=stored, customer_id=state.customer_id,
                                 created_at=now, updated_at=now)
                s.add(row)
            else:
                row.state = stored
                row.customer_id = state.customer_id
                row.updated_at = now
            turn = TurnRow(session_id=state.session_id, at=now, user_text=mask(user_text),
                           reply_text=mask(reply.text), intent=reply.intent, route=reply.route,
                           confidence=reply.confidence, latency_ms=1000 * reply.timings.get("total", 0.0),
                           reply=mask_all(reply.to_dict()), facts_kind=reply.facts_kind[:40],
                           generated_by=reply.generated_by[:80])
            s.add(turn)
            s.flush()
            return int(turn.id)

    @db_retry("read turns")
    def turns(self, session_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.id)).all()
            return [{"id": t.id, "at": t.at.isoformat(), "user": t.user_text, "reply": t.reply_text,
                     "intent": t.intent, "route": t.route, "confidence": t.confidence,
                     "latency_ms": t.latency_ms, "facts_kind": t.facts_kind, "generated_by": t.generated_by}
                    for t in rows]

    # ---- the web API and the staff demo (issue 8) ---------------------------------------------
    @db_retry("find session")
    def exists(self, session_id: str) -> bool:
        with Session(self.engine) as s:
            return s.get(SessionRow, session_id) is not None

    @db_retry("find turn")
    def turn_of(self, session_id: str, turn_id: int | None = None) -> int | None:
        """``turn_id`` if it is a turn of this session (the latest turn when None), else None."""
        with Session(self.engine) as s:
            q = select(TurnRow.id).where(TurnRow.session_id == session_id)
            q = q.where(TurnRow.id == turn_id) if turn_id is not None else q.order_by(TurnRow.id.desc()).limit(1)
            return s.scalar(q)

    @db_retry("save feedback")
    def save_feedback(self, session_id: str, turn_id: int, rating: int, comment: str, channel: str,
                      now: datetime) -> None:
        """One rating per turn: a second click (changed mind) replaces the first."""
        for attempt in range(2):  # a concurrent first rating of the same turn: retry as an update
            try:
                with Session(self.engine) as s, s.begin():
                    row = s.scalar(select(Feedback).where(Feedback.turn_id == turn_id))
                    if row is None:
                        row = Feedback(turn_id=turn_id, session_id=session_id)
                        s.add(row)
                    row.rating, row.comment, row.channel, row.created_at = rating, mask(comment), channel, now
                return
            except IntegrityError:
                if attempt:
                    raise

    @db_retry("read transcript")
    def transcript(self, session_id: str) -> list[dict[str, Any]]:
        """The turns as a shopper's widget redraws them: masked texts, quick replies, order card, rating."""
        with Session(self.engine) as s:
            rows = s.execute(select(TurnRow, Feedback.rating).outerjoin(Feedback, Feedback.turn_id == TurnRow.id)
                             .where(TurnRow.session_id == session_id).order_by(TurnRow.id)).all()
            return [{"turn_id": t.id, "at": t.at.isoformat(), "user": t.user_text, "reply": t.reply_text,
                     "route": t.route, "choices": list(t.reply.get("choices") or []),
                     "handoff": bool(t.reply.get("handoff")), "card": t.reply.get("card"), "rating": rating}
                    for t, rating in rows]


def _stored_state(state: SessionState) -> dict[str, Any]:
    """The session as stored: the conversation history (the model's context, the handoff summary)
    PII-masked like the turns, so the database keeps no raw copy of what the shopper typed. Flows keep
    their slots (order ids) as they are: the next turn needs them."""
    data = state.to_dict()
    data["history"] = [[role, mask(text)] for role, text in state.history]
    return data
