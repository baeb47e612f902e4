"""app/retry.py: which database failures are retried, the backoff between tries, and the give-up error.

The faults here are the driver's own exception types as SQLAlchemy wraps them; tests/test_faults.py
injects the real ones (a held SQLite lock, a vanished database) through whole turns.
"""

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.config import load_settings
from app.errors import ConfigError, StoreUnavailableError
from app.retry import RetryPolicy, db_retry, is_transient, retry_db


def sqlite_error(message: str) -> OperationalError:
    return OperationalError("UPDATE sessions SET state=?", {"email": "ada@example.com"},
                            sqlite3.OperationalError(message))


class Flaky:
    """Fails ``failures`` times with ``error``, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_transient_failures_are_retried_with_growing_waits():
    waits: list[float] = []
    work = Flaky(2, sqlite_error("database is locked"))
    policy = RetryPolicy(attempts=3, base_delay_s=0.2, max_delay_s=10)
    assert retry_db(work, policy, "save turn", sleep=waits.append) == "done"
    assert work.calls == 3 and len(waits) == 2
    assert 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4  # base, then doubled; half of each is jitter


def test_waits_are_capped():
    policy = RetryPolicy(attempts=10, base_delay_s=1.0, max_delay_s=1.5)
    assert all(0.75 <= policy.delay(n) <= 1.5 for n in range(2, 10))
    assert policy.delay(1, rand=lambda: 0.0) == 0.5 and policy.delay(5, rand=lambda: 1.0) == 1.5


def test_after_the_last_attempt_the_store_is_unavailable():
    waits: list[float] = []
    work = Flaky(99, sqlite_error("database is locked"))
    with pytest.raises(StoreUnavailableError, match="save turn: database is locked") as info:
        retry_db(work, RetryPolicy(attempts=4, base_delay_s=0.01), "save turn", sleep=waits.append)
    assert work.calls == 4 and len(waits) == 3 and isinstance(info.value.__cause__, OperationalError)
    assert "ada@example.com" not in str(info.value)  # the statement's parameters stay out of the message


@pytest.mark.parametrize("error", [sqlite_error("no such table: turns"), sqlite_error('near "SELEC": syntax error'),
                                   IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))],
                         ids=["missing_table", "bad_sql", "integrity"])
def test_errors_that_time_does_not_fix_are_raised_at_once(error):
    waits: list[float] = []
    work = Flaky(1, error)
    with pytest.raises(type(error)):
        retry_db(work, RetryPolicy(attempts=5), "save turn", sleep=waits.append)
    assert work.calls == 1 and waits == []


class ServerGone(Exception):
    """Stands for a driver error of a server database (psycopg's OperationalError and the like)."""


@pytest.mark.parametrize(("error", "transient"), [
    (sqlite_error("database is locked"), True),
    (sqlite_error("unable to open database file"), True),
    (sqlite_error("disk I/O error"), True),
    (sqlite_error("no such table: sessions"), False),
    (OperationalError("SELECT 1", {}, ServerGone("connection refused")), True),
    (DBAPIError("SELECT 1", {}, ServerGone("server closed the connection"), connection_invalidated=True), True),
    (DBAPIError("SELECT 1", {}, ServerGone("bad value")), False),
    (ValueError("not a database error"), False),
])
def test_which_failures_are_transient(error, transient):
    assert is_transient(error) is transient


def test_the_decorator_uses_the_objects_policy():
    class Repo:
        def __init__(self) -> None:
            self.retry = RetryPolicy(attempts=2, base_delay_s=0.0)
            self.work = Flaky(1, sqlite_error("database is locked"))

        @db_retry("load session")
        def load(self) -> str:
            return self.work()

    repo = Repo()
    assert repo.load() == "done" and repo.work.calls == 2
    repo.retry = RetryPolicy(attempts=1)
    repo.work = Flaky(1, sqlite_error("database is locked"))
    with pytest.raises(StoreUnavailableError, match="load session"):
        repo.load()


def test_the_policy_comes_from_named_settings(tmp_path):
    s = load_settings(data_dir=str(tmp_path), db_retry_attempts=5, db_retry_base_delay_s=0.5, db_retry_max_delay_s=3)
    assert RetryPolicy.from_settings(s) == RetryPolicy(5, 0.5, 3.0)
    with pytest.raises(ConfigError, match="db_retry_attempts"):
        load_settings(data_dir=str(tmp_path), db_retry_attempts=0)
