"""Retrying database work that failed for a passing reason: a lock another connection holds, a server
restarting, a dropped connection. Exponential backoff with jitter, then ``StoreUnavailableError``.

    policy = RetryPolicy.from_settings(settings)
    state = retry_db(lambda: repo.load(session_id), policy, what="load session")

    class Store:
        retry = policy                      # the decorator reads the policy from ``self.retry``
        @db_retry("create return")
        def create_return(self, ...): ...   # one transaction per call, so a retry never half-repeats

Only transient errors are retried (``is_transient``); an IntegrityError or a programming error is
raised at once, unchanged. Wrap whole transactions, never a part of one: a retried call must be safe
to run again (a read, or an idempotent write).
"""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.errors import StoreUnavailableError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in all (1: no retry)
    base_delay_s: float = 0.1  # wait before the 2nd try; doubled before each later one
    max_delay_s: float = 2.0  # no single wait longer than this

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        return cls(settings.db_retry_attempts, settings.db_retry_base_delay_s, settings.db_retry_max_delay_s)

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Wait before retry number ``retry`` (1, 2, ...): half fixed, half random ("equal jitter"),
        so the workers of a multi-process deployment that lost the database together do not all come
        back in the same instant."""
        full = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        return full / 2 + rand() * full / 2


# SQLite reports a missing table or bad SQL as OperationalError too: only these pass with time
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy",
                     "unable to open database file", "disk i/o error")


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass if the same work is tried again a moment later: a lock, a server that is
    restarting or refusing connections, a dropped connection, an exhausted pool."""
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        if isinstance(exc.orig, sqlite3.Error):
            return any(m in str(exc.orig).lower() for m in _SQLITE_TRANSIENT)
        return True  # PostgreSQL: connection refused or lost, server shutting down, serialization/lock timeouts
    return False


def describe(exc: BaseException) -> str:
    """The driver's own message, first line: SQLAlchemy's text would add the statement and its
    parameters, which can hold a shopper's data, to the log."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]


def retry_db(work: Callable[[], T], policy: RetryPolicy, what: str = "database work",
             sleep: Callable[[float], None] = time.sleep) -> T:
    """``work()``, tried up to ``policy.attempts`` times while it fails transiently.

    Raises ``StoreUnavailableError`` (from the last error) when every attempt failed transiently;
    other errors pass through at once.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return work()
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            reason = describe(exc)
            if attempt >= policy.attempts:
                log.error("%s failed %d time(s), giving up: %s", what, attempt, reason)
                raise StoreUnavailableError(f"the database is unavailable ({what}: {reason})") from exc
            wait = policy.delay(attempt)
            log.warning("%s failed (attempt %d of %d, retrying in %.2f s): %s", what, attempt, policy.attempts,
                        wait, reason)
            sleep(wait)
    raise AssertionError("unreachable: attempts >= 1")  # pragma: no cover


def db_retry(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator for methods of an object with a ``retry`` attribute (a ``RetryPolicy``)."""

    def wrap(method: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            policy = getattr(args[0], "retry", None) or RetryPolicy()
            return retry_db(lambda: method(*args, **kwargs), policy, what)

        return wrapper

    return wrap
