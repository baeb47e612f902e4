"""Who may continue or read a web API session: the holder of the session token issued on its first turn.

A session id alone is not a secret (it may show up in logs or a shared screenshot), so the API gives
the first turn's caller a random token and requires it afterwards (header ``X-Session-Token``). Only
its SHA-256 is stored. Sessions that were not started through the API (staff demo, CLI) have no
token, and the API refuses them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import SessionToken
from app.errors import ShopdeskError
from app.retry import db_retry
from app.session import SessionRepository


class AccessDenied(ShopdeskError):
    """The caller does not hold this session's token (the message says what to do)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    return "w-" + secrets.token_urlsafe(18)


class SessionAccess:
    def __init__(self, engine: Engine, sessions: SessionRepository) -> None:
        self.engine = engine
        self.sessions = sessions
        self.retry = sessions.retry  # transient database failures: retried like the session's own reads

    @db_retry("check session token")
    def holds(self, session_id: str, token: str | None) -> bool:
        """True when ``token`` is this session's token (constant-time compare)."""
        if not token:
            return False
        with Session(self.engine) as s:
            row = s.get(SessionToken, session_id)
        return row is not None and hmac.compare_digest(row.token_hash, _digest(token))

    @db_retry("open session")  # safe to re-run: the only write is the last step, and it is all or nothing
    def open(self, session_id: str | None, token: str | None, now: datetime) -> tuple[str, str | None]:
        """The session to run a turn in, and its new token when this call started it (else None)."""
        if session_id is None:
            session_id = new_session_id()
        with Session(self.engine) as s:
            row = s.get(SessionToken, session_id)
        if row is not None:
            if token and hmac.compare_digest(row.token_hash, _digest(token)):
                return session_id, None
            raise AccessDenied("this session needs its session token: send the X-Session-Token header "
                               "you got on its first turn, or leave out session_id to start a new session")
        if self.sessions.exists(session_id):
            raise AccessDenied("this session id is taken: leave out session_id to start a new session")
        fresh = secrets.token_urlsafe(32)
        try:
            with Session(self.engine) as s, s.begin():
                s.add(SessionToken(session_id=session_id, token_hash=_digest(fresh), created_at=now))
        except IntegrityError as exc:  # another request started this session id a moment ago
            raise AccessDenied("this session id is taken: leave out session_id to start a new session") from exc
        return session_id, fresh
