"""Signed customer tokens: HMAC-SHA256 over customer id and expiry; forged, expired, malformed refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from datetime import datetime, timedelta

import pytest

from app.config import load_settings
from app.errors import ConfigError
from app.tokens import SECRET_FILE, check, load_secret, sign

SECRET = b"s" * 48
NOW = datetime(2026, 3, 15, 10, 0)


def test_a_signed_token_names_its_customer_until_it_expires():
    token = sign("C0001", NOW + timedelta(minutes=30), SECRET)
    assert check(token, SECRET, NOW).customer_id == "C0001"
    assert check(token, SECRET, NOW + timedelta(minutes=29, seconds=59)).valid
    late = check(token, SECRET, NOW + timedelta(minutes=30))
    assert not late.valid and late.reason == "expired"


def test_the_format_is_the_documented_one():
    """The shop's site signs with its own code (docs/customer-tokens.md): this is that code."""
    expiry = NOW + timedelta(hours=1)
    cid = base64.urlsafe_b64encode(b"C 42/x").rstrip(b"=").decode()
    payload = f"v1.{cid}.{int((expiry - datetime(1970, 1, 1)).total_seconds())}"
    sig = base64.urlsafe_b64encode(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    assert sign("C 42/x", expiry, SECRET) == f"{payload}.{sig}"
    assert check(f"{payload}.{sig}", SECRET, NOW).customer_id == "C 42/x"


@pytest.mark.parametrize("tamper", ["other secret", "other customer", "later expiry", "flipped signature"])
def test_forged_tokens_are_refused(tamper):
    token = sign("C0001", NOW + timedelta(minutes=30), SECRET)
    version, cid, expiry, sig = token.split(".")
    forged = {
        "other secret": sign("C0001", NOW + timedelta(minutes=30), b"t" * 48),
        "other customer": ".".join([version, base64.urlsafe_b64encode(b"C0002").rstrip(b"=").decode(), expiry, sig]),
        "later expiry": ".".join([version, cid, str(int(expiry) + 86400), sig]),
        "flipped signature": ".".join([version, cid, expiry, ("A" if sig[0] != "A" else "B") + sig[1:]]),
    }[tamper]
    result = check(forged, SECRET, NOW)
    assert not result.valid and result.reason == "forged"


@pytest.mark.parametrize("token", ["", "hello", "v1.QzAwMDE.notanumber.abc", "v2.QzAwMDE.1900000000.abc",
                                   "v1.QzAwMDE.1900000000.%%%", "v1..." , "x" * 5000, "v1.a.b.c.d"])
def test_malformed_tokens_are_refused_without_raising(token):
    result = check(token, SECRET, NOW)
    assert not result.valid and result.reason == "malformed"


def test_a_forged_token_is_refused_before_its_expiry_is_read():
    """Expired-and-forged says forged: the expiry of an unsigned token tells nothing."""
    token = sign("C0001", NOW - timedelta(minutes=1), b"t" * 48)
    assert check(token, SECRET, NOW).reason == "forged"


def test_the_dev_secret_is_generated_once_per_data_dir_and_private(tmp_path):
    first = load_secret("", tmp_path / "a")
    assert len(first) >= 48 and load_secret("", tmp_path / "a") == first
    assert load_secret("", tmp_path / "b") != first
    mode = stat.S_IMODE((tmp_path / "a" / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert load_secret("x" * 40, tmp_path / "a") == b"x" * 40  # a configured secret wins


def test_the_secret_comes_from_the_environment_never_from_a_file(tmp_path, monkeypatch):
    toml = tmp_path / "shopdesk.toml"
    toml.write_text('customer_token_secret = "' + "k" * 40 + '"\n')
    with pytest.raises(ConfigError, match="SHOPDESK_CUSTOMER_TOKEN_SECRET in the environment"):
        load_settings(toml)
    monkeypatch.setenv("SHOPDESK_CUSTOMER_TOKEN_SECRET", "k" * 40)
    assert load_settings().customer_token_secret == "k" * 40
    monkeypatch.setenv("SHOPDESK_CUSTOMER_TOKEN_SECRET", "short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings()
