"""Persistence of sessions and turns. Only the orchestrator calls ``save``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db import SessionRow, TurnRow
from app.pii import mask
from app.schema import Reply, SessionState


class SessionRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, session_id: str) -> SessionState:
        with Session(self.engine) as s:
            row = s.get(SessionRow, session_id)
            return SessionState.from_dict(row.state) if row else SessionState(session_id=session_id)

    def save_turn(self, state: SessionState, user_text: str, reply: Reply, now: datetime) -> int:
        """Persist the new session state and the turn in one transaction; returns the turn id."""
        with Session(self.engine) as s, s.begin():
            row = s.get(SessionRow, state.session_id)
            if row is None:
                row = SessionRow(id=state.session_id, state=state.to_dict(), created_at=now, updated_at=now)
                s.add(row)
            else:
                row.state = state.to_dict()
                row.updated_at = now
            turn = TurnRow(session_id=state.session_id, at=now, user_text=mask(user_text),
                           reply_text=mask(reply.text), intent=reply.intent, route=reply.route,
                           confidence=reply.confidence, latency_ms=1000 * reply.timings.get("total", 0.0),
                           reply=_masked(reply.to_dict()))
            s.add(turn)
            s.flush()
            return int(turn.id)

    def turns(self, session_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.id)).all()
            return [{"id": t.id, "at": t.at.isoformat(), "user": t.user_text, "reply": t.reply_text,
                     "intent": t.intent, "route": t.route, "confidence": t.confidence,
                     "latency_ms": t.latency_ms} for t in rows]


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value
