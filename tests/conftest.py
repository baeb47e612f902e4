"""Shared fixtures: a tmp data dir, the fakes, a small shop, and the real models (integration).

Fakes (keyword classifier, hashing embedder, template generator) live in the packages beside the
real implementations; these fixtures only wire them. No test may reach the network.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

import pytest

from app.clock import FrozenClock
from app.config import Settings, load_settings
from app.factory import Mode, Models, build_assistant, build_index, classifier, database, embedder, faq_index
from app.fixtures import load_fixtures
from app.generator import TemplateGenerator

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 15, 10, 0)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHOP = {
    "customers": [
        {"id": "C900", "name": "Ada Park", "email": "ada@example.com", "zip": "94110"},
        {"id": "C901", "name": "Ben Okafor", "email": "ben@example.com", "zip": "10027"},
    ],
    "orders": [
        {"id": "SD-20001", "customer": "C900", "placed_at": "2026-03-01", "status": "in_transit",
         "shipped_at": "2026-03-02", "expected_delivery": "2026-03-17", "carrier": "UPS",
         "tracking_number": "1Z999AA10123456784",
         "tracking_events": [{"at": "2026-03-03T09:00:00Z", "location": "Reno, NV",
                              "description": "Departed facility"}],
         "items": [{"sku": "SHOE-TR-42", "name": "Trail runner", "qty": 1, "price": 89.0, "category": "shoes"}]},
        {"id": "SD-20002", "customer": "C900", "placed_at": "2026-03-14", "status": "pending",
         "items": [{"sku": "MUG-1", "name": "Camp mug", "qty": 2, "price": 12.0, "category": "home"}]},
        {"id": "SD-20003", "customer": "C901", "placed_at": "2026-02-01", "status": "delivered",
         "delivered_at": "2026-02-05", "carrier": "USPS", "tracking_number": "9400111899223344556677",
         "items": [{"sku": "PKA-BLK-L", "name": "Insulated Parka", "qty": 1, "price": 229.0, "category": "outerwear"}]},
    ],
}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback only (a Chroma or model server a test starts itself)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network access blocked in tests: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=str(tmp_path / "data"), generator="template")


@pytest.fixture(scope="session")
def fake_models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Fakes with a real Chroma index of the repo's articles (hashing embeddings)."""
    base = load_settings(data_dir=str(tmp_path_factory.mktemp("fake-models")), generator="template")
    mode = Mode(fake_models=True)
    emb = embedder(base, mode)
    build_index(base, emb)
    return Models(emb, classifier(base, emb, mode), TemplateGenerator(), faq_index(base, emb))


@pytest.fixture()
def make_assistant(settings: Settings, fake_models: Models):
    """Build an Assistant on a fresh database with ``SHOP`` (or given) fixtures and a frozen clock."""

    def make(models: Models | None = None, fixtures: dict | None = None, now: datetime = NOW, **overrides):
        s = settings.replace(**overrides) if overrides else settings
        engine = database(s)
        load_fixtures(engine, SHOP if fixtures is None else fixtures)
        return build_assistant(s, models or fake_models, clock=FrozenClock(now), engine=engine)

    return make


# ---- the shop database on SQLite and on PostgreSQL (store contract tests) --------------------------
POSTGRES_URL_ENV = "SHOPDESK_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server of the contract tests. Skipped only outside CI when none is configured."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app.db import make_engine

    url = os.environ.get(POSTGRES_URL_ENV, "")
    hint = f"`export {POSTGRES_URL_ENV}=$(bash .ci/postgres-up)` starts one on loopback"
    if not url:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {POSTGRES_URL_ENV} is not, so the PostgreSQL contract tests cannot run; {hint}")
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_URL_ENV} ({hint})")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        pytest.fail(f"{POSTGRES_URL_ENV} is set but the server is unreachable ({hint}): {exc}")
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """The URL of an empty database: a SQLite file, or a fresh schema on the PostgreSQL server (dropped after)."""
    from uuid import uuid4

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from app.db import make_engine

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'contract.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid4().hex[:16]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(admin.url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture()
def db_engine(empty_db_url: str):
    """A migrated, empty shop database on SQLite and on PostgreSQL (the test runs once on each)."""
    from app.db import make_engine, migrate

    engine = make_engine(empty_db_url)
    migrate(engine)
    yield engine
    engine.dispose()


# ---- the real bundled models (tests marked integration) ------------------------------------------
@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Real models; the converted generator weights are shared with `make prepare`'s cache."""
    data = tmp_path_factory.mktemp("real")
    return load_settings(data_dir=str(data), generator="local",
                         model_cache_dir_override=str(REPO / "data" / "models"))


@pytest.fixture(scope="session")
def real_models(real_settings: Settings) -> Models:
    from app.factory import generator
    from intents.train import train

    emb = embedder(real_settings)
    train(emb, real_settings.resolved_intent_model_dir, base_model=emb.name, progress=lambda _m: None)
    build_index(real_settings, emb)
    return Models(emb, classifier(real_settings, emb), generator(real_settings), faq_index(real_settings, emb))
