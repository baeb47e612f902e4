"""Signed customer tokens: how the shop's site tells the widget who is signed in (design.md section 4).

A token is ``v1.<customer id, base64url>.<expiry, unix seconds>.<signature, base64url>`` where the
signature is HMAC-SHA256 with the shop's secret over ``v1.<customer id, base64url>.<expiry>``. The
site signs one when it renders the widget for a signed-in customer; Shopdesk checks the signature in
constant time, then the expiry, and never trusts the customer id before both pass. See
``docs/customer-tokens.md`` for signing code a shop can copy.

The secret comes from ``SHOPDESK_CUSTOMER_TOKEN_SECRET`` (at least 32 characters). Without it a
random one is generated once per data directory (``<data dir>/customer_token.secret``), which is
enough for the demo and tests; a shop sets its own, shared with its site, in production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

VERSION = "v1"
SECRET_FILE = "customer_token.secret"
_B64 = re.compile(r"[A-Za-z0-9_-]{1,400}")


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking a token: ``customer_id`` when valid, else why not."""

    customer_id: str | None
    reason: str = ""  # "" | malformed | forged | expired

    @property
    def valid(self) -> bool:
        return self.customer_id is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _epoch(moment: datetime) -> int:
    """Naive datetimes are UTC (as everywhere in Shopdesk)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def _signature(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def sign(customer_id: str, expires_at: datetime, secret: bytes) -> str:
    """A token for ``customer_id`` valid until ``expires_at``."""
    if not customer_id:
        raise ValueError("customer_id must not be empty")
    payload = f"{VERSION}.{_b64(customer_id.encode('utf-8'))}.{_epoch(expires_at)}"
    return f"{payload}.{_b64(_signature(secret, payload))}"


def check(token: str, secret: bytes, now: datetime) -> TokenCheck:
    """Valid (the customer id) or the reason it is not; never raises on bad input."""
    parts = token.strip().split(".") if isinstance(token, str) and len(token) <= 512 else []
    if len(parts) != 4 or parts[0] != VERSION or not parts[2].isdigit() \
            or not (_B64.fullmatch(parts[1]) and _B64.fullmatch(parts[3])):
        return TokenCheck(None, "malformed")
    try:
        given = _unb64(parts[3])
    except (binascii.Error, ValueError):
        return TokenCheck(None, "malformed")
    expected = _signature(secret, ".".join(parts[:3]))
    if not hmac.compare_digest(given, expected):
        return TokenCheck(None, "forged")
    if int(parts[2]) <= _epoch(now):
        return TokenCheck(None, "expired")
    try:
        customer_id = _unb64(parts[1]).decode("utf-8")
    except (binascii.Error, ValueError):  # signed by us, so only a bug in the signer gets here
        return TokenCheck(None, "malformed")
    return TokenCheck(customer_id) if customer_id else TokenCheck(None, "malformed")


def load_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, else this data directory's generated one (created on first use)."""
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48))
        try:  # link is atomic: two workers starting together end up with one secret, the first one's
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="ascii").strip().encode("ascii")
