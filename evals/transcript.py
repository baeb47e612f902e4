"""The transcript format (design.md section 5): strict loading into typed values.

Unknown keys are errors that name the file and the key; transcripts written outside the repo must
run unchanged, so this module accepts exactly the documented format, no more, no less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.errors import TranscriptError
from app.fixtures import FixtureError, validate

TOP_KEYS = {"id", "turns"}, {"description", "tags", "now", "seed", "fixtures", "final_state"}
TURN_KEYS = {"user"}, {"expect"}
EXPECT_KEYS = {"intent", "route", "reply_contains", "reply_contains_any", "reply_not_contains", "reply_matches",
               "sources", "actions", "handoff", "verified"}
FINAL_KEYS = {"returns", "orders", "handoff_tickets"}
SEEDS = ("demo", "empty")


@dataclass(frozen=True)
class Turn:
    user: str
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcript:
    id: str
    turns: tuple[Turn, ...]
    source: str
    description: str = ""
    tags: tuple[str, ...] = ()
    now: datetime | None = None
    seed: str = "demo"
    fixtures: dict[str, Any] = field(default_factory=dict)
    final_state: dict[str, Any] | None = None


def _keys(where: str, data: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(data, dict):
        raise TranscriptError(f"{where}: expected a mapping, got {type(data).__name__}")
    missing = required - data.keys()
    unknown = data.keys() - required - optional
    if missing:
        raise TranscriptError(f"{where}: missing key(s) {sorted(missing)}")
    if unknown:
        raise TranscriptError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(required | optional)}")


_TEXT_KEYS = ("intent", "route", "reply_contains", "reply_contains_any", "reply_not_contains", "reply_matches",
              "sources")


def _check_types(where: str, expect: dict[str, Any]) -> None:
    """Text checks take a string or a list of strings (an unquoted `Source:` in YAML is a mapping)."""
    for key in _TEXT_KEYS:
        if key in expect:
            values = expect[key] if isinstance(expect[key], list) else [expect[key]]
            bad = [v for v in values if not isinstance(v, str | int | float) or isinstance(v, bool)]
            if bad:
                raise TranscriptError(f"{where}.{key}: expected text, got {bad!r} (quote values that contain ':')")
    for key in ("handoff", "verified"):
        if key in expect and not isinstance(expect[key], bool):
            raise TranscriptError(f"{where}.{key}: expected true or false, got {expect[key]!r}")
    if "actions" in expect and not isinstance(expect["actions"], list):
        raise TranscriptError(f"{where}.actions: expected a list")


def parse(data: Any, source: str) -> Transcript:
    _keys(source, data, *TOP_KEYS)
    where = f"{source} [{data['id']}]"
    turns = data["turns"]
    if not isinstance(turns, list) or not turns:
        raise TranscriptError(f"{where}: turns must be a non-empty list")
    parsed = []
    for i, t in enumerate(turns):
        _keys(f"{where} turns[{i}]", t, *TURN_KEYS)
        expect = t.get("expect") or {}
        _keys(f"{where} turns[{i}].expect", expect, set(), EXPECT_KEYS)
        _check_types(f"{where} turns[{i}].expect", expect)
        parsed.append(Turn(str(t["user"]), dict(expect)))
    seed = data.get("seed", "demo")
    if seed not in SEEDS:
        raise TranscriptError(f"{where}: seed must be one of {SEEDS}, not {seed!r}")
    fixtures = data.get("fixtures") or {}
    try:
        validate(fixtures, f"{where} fixtures")
    except FixtureError as exc:
        raise TranscriptError(str(exc)) from exc
    final = data.get("final_state")
    if final is not None:
        _keys(f"{where} final_state", final, set(), FINAL_KEYS)
    now = data.get("now")
    try:
        now_dt = datetime.fromisoformat(str(now).replace("Z", "+00:00")).replace(tzinfo=None) if now else None
    except ValueError as exc:
        raise TranscriptError(f"{where}: now={now!r} is not an ISO timestamp") from exc
    return Transcript(id=str(data["id"]), turns=tuple(parsed), source=source,
                      description=str(data.get("description", "")), tags=tuple(data.get("tags") or ()),
                      now=now_dt, seed=seed, fixtures=fixtures, final_state=final)


def load_file(path: Path) -> list[Transcript]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TranscriptError(f"{path}: not valid YAML: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    return [parse(item, str(path)) for item in items]


def load_paths(paths: list[Path]) -> list[Transcript]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml")))
        elif p.is_file():
            files.append(p)
        else:
            raise TranscriptError(f"{p}: no such file or folder")
    transcripts = [t for f in files for t in load_file(f)]
    seen: dict[str, str] = {}
    for t in transcripts:
        if t.id in seen:
            raise TranscriptError(f"duplicate transcript id {t.id!r} in {t.source} and {seen[t.id]}")
        seen[t.id] = t.source
    return transcripts
