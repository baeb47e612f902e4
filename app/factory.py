"""Building the Assistant and its components from Settings: real parts or deterministic fakes.

Nothing heavy happens here: models load on first use (or in ``warm_up``). Fakes (keyword
classifier, hashing embedder, template generator) are for fast tests and ``--offline-fast`` runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.cancel import CancelHandler
from app.clock import Clock, SystemClock
from app.config import Settings
from app.db import make_engine, migrate
from app.errors import IndexNotBuiltError
from app.faq import FaqHandler
from app.generator import Generator, LocalGenerator, OpenAIGenerator, TemplateGenerator
from app.guard import Guard
from app.handoff import HandoffHandler
from app.orchestrator import Assistant, Components
from app.orders import OrderStatusHandler
from app.policy import load_policy
from app.refunds import RefundStatusHandler
from app.retry import RetryPolicy
from app.returns import ReturnsHandler
from app.router import Router
from app.session import SessionRepository
from app.store import ShopStore
from app.writes import FlowWriter
from intents.classifier import EmbeddingClassifier, IntentClassifier, KeywordClassifier
from intents.entities import EntityExtractor
from knowledge_base.embedder import Embedder, HashingEmbedder, RecentEmbeddings, SentenceTransformerEmbedder
from knowledge_base.index import ChromaIndex, SyncStats
from knowledge_base.loader import load_chunks
from knowledge_base.retriever import DenseRetriever, HybridRetriever, LexicalRetriever, Retriever


@dataclass(frozen=True)
class Mode:
    """Which implementations to use: real models, or the fakes for fast tests."""

    fake_models: bool = False


def database(settings: Settings) -> Engine:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if engine.dialect.name == "sqlite":
        limit_lock_wait(engine, settings.db_busy_timeout_s)
    migrate(engine)
    return engine


def limit_lock_wait(engine: Engine, seconds: float) -> None:
    """How long a SQLite connection waits for another's lock before "database is locked" (per attempt;
    app/retry.py retries). Runs after make_engine's own connect hook, so it overrides its default."""
    millis = int(seconds * 1000)

    @event.listens_for(engine, "connect")
    def _busy_timeout(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA busy_timeout = {millis}")


def embedder(settings: Settings, mode: Mode = Mode()) -> Embedder:
    if mode.fake_models:
        return HashingEmbedder()
    return RecentEmbeddings(SentenceTransformerEmbedder(settings.embedding_model, device=settings.device,
                                                        query_threads=settings.threads))


def faq_index(settings: Settings, emb: Embedder) -> ChromaIndex:
    """The collection is named after the embedder, so vectors of two models never mix."""
    suffix = re.sub(r"[^a-z0-9]+", "-", emb.name.lower()).strip("-")
    name = f"{settings.chroma_collection}__{suffix}"[:60]
    if settings.chroma_host:
        return ChromaIndex(name, host=settings.chroma_host, port=settings.chroma_port)
    return ChromaIndex(name, path=settings.resolved_chroma_path)


def imported_faq_dir(settings: Settings) -> Path:
    """Where `shopdesk import-faq` keeps a shop's own question/answer pairs (beside the repo's articles)."""
    from knowledge_base.faq_import import IMPORT_DIR_NAME

    return settings.data_dir / IMPORT_DIR_NAME


def build_index(settings: Settings, emb: Embedder, extra_dirs: tuple[Path, ...] = (),
                progress: Callable[[int, int], None] | None = None) -> SyncStats:
    """Sync the index with the repo's articles, the imported pairs of the data dir and ``extra_dirs``."""
    from knowledge_base.loader import DOCS_DIR

    chunks = load_chunks(DOCS_DIR, imported_faq_dir(settings), *extra_dirs)
    return faq_index(settings, emb).sync(chunks, emb, progress=progress)


def faq_retriever(settings: Settings, emb: Embedder, index: ChromaIndex) -> Retriever:
    """The retriever ``retrieval_mode`` names; hybrid (dense + BM25, rank fusion) by default."""
    if settings.retrieval_mode == "dense":
        return DenseRetriever(index, emb)
    if settings.retrieval_mode == "bm25":
        return LexicalRetriever(index)
    return HybridRetriever(index, emb, rrf_k=settings.retrieval_rrf_k, candidates=settings.retrieval_candidates,
                           dense_weight=settings.retrieval_dense_weight)


def classifier(settings: Settings, emb: Embedder, mode: Mode = Mode()) -> IntentClassifier:
    if mode.fake_models:
        return KeywordClassifier()
    model_dir = settings.resolved_intent_model_dir
    try:
        return EmbeddingClassifier.load(model_dir, emb)
    except FileNotFoundError as exc:
        raise IndexNotBuiltError(f"no intent model in {model_dir}: run `shopdesk train` (or `make run`)") from exc


def generator(settings: Settings, mode: Mode = Mode()) -> Generator:
    if mode.fake_models or settings.generator == "template":
        return TemplateGenerator()
    if settings.generator == "openai":
        return OpenAIGenerator(settings.openai_base_url, settings.openai_model, settings.openai_api_key)
    return LocalGenerator(settings.generator_model, settings.model_cache_dir, settings.device, settings.dtype,
                          settings.threads, queue_max=settings.generation_queue_max,
                          batch=settings.generation_batch_max, native=settings.native_decode)


@dataclass(frozen=True)
class Models:
    """The heavy, shareable parts: built once per process and shared by every Assistant."""

    embedder: Embedder
    classifier: IntentClassifier
    generator: Generator
    index: ChromaIndex


def load_models(settings: Settings, mode: Mode = Mode(), gen: Generator | None = None) -> Models:
    """Wire the models (lazy: weights load on first use or in ``Assistant.warm_up``)."""
    emb = embedder(settings, mode)
    index = faq_index(settings, emb)
    if not index.exists():
        raise IndexNotBuiltError(f"the FAQ index {index.collection_name} is empty: run `shopdesk index`")
    return Models(emb, classifier(settings, emb, mode), gen or generator(settings, mode), index)


def build_assistant(settings: Settings, models: Models | None = None, mode: Mode = Mode(),
                    clock: Clock | None = None, engine: Engine | None = None) -> Assistant:
    models = models or load_models(settings, mode)
    engine = engine or database(settings)
    store = ShopStore(engine)
    writer = FlowWriter(engine, RetryPolicy.from_settings(settings))
    policy = load_policy(Path(settings.policy_file)) if settings.policy_file else load_policy()
    components = Components(
        settings=settings,
        classifier=models.classifier,
        extractor=EntityExtractor(settings.order_prefix),
        router=Router(settings),
        orders=OrderStatusHandler(store, settings),
        faq=FaqHandler.from_settings(faq_retriever(settings, models.embedder, models.index), settings,
                                     models.embedder),
        handoff=HandoffHandler(store),
        returns=ReturnsHandler(store, writer, settings, policy),
        refunds=RefundStatusHandler(store, writer, settings, policy),
        cancel=CancelHandler(store, writer, settings, policy),
        generator=models.generator,
        guard=Guard(),
        sessions=SessionRepository(engine, RetryPolicy.from_settings(settings)),
        clock=clock or SystemClock(),
    )
    return Assistant(components)
