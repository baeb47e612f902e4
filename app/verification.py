"""Who the shopper is (design.md section 4): order details or a signed token, and the lockout.

- By order: the order number plus the order's email or billing zip. An unknown order and wrong
  details are the same failure, so an answer never tells whether an order number exists.
- By token: a signed customer token from the shop's site (``app.tokens``); a forged, expired,
  malformed token, or one for a customer the shop does not have, is a failure too.
- Lockout: ``max_failed_verifications`` failures within ``lockout_minutes`` from one session, or
  from one client address across sessions, lock lookups for ``lockout_minutes`` from the failure
  that reached the limit. Attempts are rows in the database, so every app worker sees them.

Used by the order-status handler, and by any handler that must know who the shopper is first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import tokens
from app.config import Settings
from app.store import ShopStore


@dataclass(frozen=True)
class Lockout:
    until: datetime

    def minutes_left(self, now: datetime) -> int:
        return max(1, math.ceil((self.until - now).total_seconds() / 60))


class Verifier:
    def __init__(self, store: ShopStore, settings: Settings) -> None:
        self.store = store
        self.max_failures = settings.max_failed_verifications
        self.period = timedelta(minutes=settings.lockout_minutes)
        self._secret_setting = settings.customer_token_secret
        self._data_dir = settings.data_dir
        self._secret: bytes | None = None

    # ---- lockout ------------------------------------------------------------------------------
    def lockout(self, session_id: str, client_id: str, now: datetime) -> Lockout | None:
        """The active lockout of this session or client address, if any."""
        since = now - 2 * self.period  # a lock still active began within one period, its failures one before
        ends = [self._lock_end(self.store.failure_times(since, session_id=session_id)),
                self._lock_end(self.store.failure_times(since, client_id=client_id))]
        active = [end for end in ends if end is not None and end > now]
        return Lockout(max(active)) if active else None

    def _lock_end(self, times: list[datetime]) -> datetime | None:
        """The end of the latest lock: the limit was reached at times[i] by failures within one period."""
        n = self.max_failures
        ends = [times[i] + self.period for i in range(n - 1, len(times)) if times[i] - times[i - n + 1] <= self.period]
        return max(ends, default=None)

    # ---- verification -------------------------------------------------------------------------
    def by_order(self, session_id: str, client_id: str, order_id: str, email: str | None, zip_code: str | None,
                 now: datetime) -> str | None:
        """The order's customer when the details match, else None (recorded as a failure)."""
        customer = self.store.customer_for_order(order_id, email=email, zip_code=zip_code)
        self.store.record_verification(session_id, client_id, now, success=customer is not None, method="order",
                                       reason="" if customer else "details")
        return customer

    def by_token(self, session_id: str, client_id: str, token: str, now: datetime) -> tokens.TokenCheck:
        result = tokens.check(token, self.secret, now)
        if result.valid and not self.store.customer_exists(result.customer_id or ""):
            result = tokens.TokenCheck(None, "unknown_customer")
        self.store.record_verification(session_id, client_id, now, success=result.valid, method="token",
                                       reason=result.reason)
        return result

    def peek_token(self, token: str, now: datetime) -> tokens.TokenCheck:
        """Check a token without counting it: for a session that is verified already."""
        return tokens.check(token, self.secret, now)

    def record_failure(self, session_id: str, client_id: str, now: datetime, reason: str) -> None:
        """A lookup that counts against the limit without a verification (another customer's order)."""
        self.store.record_verification(session_id, client_id, now, success=False, method="order", reason=reason)

    @property
    def secret(self) -> bytes:
        if self._secret is None:  # lazily: most turns never see a token
            self._secret = tokens.load_secret(self._secret_setting, self._data_dir)
        return self._secret
