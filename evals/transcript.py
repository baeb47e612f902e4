"""The transcript format (design.md section 5): strict loading into typed values.

Transcripts written outside the repo must run unchanged, so this module accepts exactly the
documented format, no more, no less. Every problem is reported as ``FILE:LINE: where: what`` (all
problems of a file at once, so a staff member fixes them in one go): unknown or missing keys, values
of the wrong type, unknown routes or action names, fixture rows the database would refuse, and
fixture rows that point at customers, orders or items that do not exist.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.errors import TranscriptError
from evals.located import line_of, load, plain
from evals.validation import (
    EVAL_DEMO_SIZE,
    EXPECT_KEYS,
    SEEDS,
    TOP_KEYS,
    TURN_KEYS,
    Problems,
    check_expect,
    check_final,
    check_fixtures,
)

__all__ = ["EVAL_DEMO_SIZE", "Transcript", "Turn", "load_file", "load_paths", "parse"]


@dataclass(frozen=True)
class Turn:
    user: str
    expect: dict[str, Any] = field(default_factory=dict)
    line: int = 0


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
    line: int = 0
    raw: dict[str, Any] = field(default_factory=dict)  # the transcript as written (for failed.yaml)
    digest: str = ""  # hash of ``raw``: the gate compares metrics only over unchanged transcripts


def _parse_now(p: Problems, where: str, data: dict[str, Any]) -> datetime | None:
    now = data.get("now")
    if not now:
        return None
    if isinstance(now, datetime):
        return now.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(now).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        p.add(line_of(data, "now"), where, f"now={now!r} is not an ISO timestamp (e.g. \"2026-03-15T10:00:00Z\")")
        return None


def _digest(raw: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parse(data: Any, source: str, line: int = 0, problems: Problems | None = None) -> Transcript | None:
    """One transcript; problems go to ``problems`` (raised at once when none is given)."""
    p = problems or Problems(source)
    before = len(p.items)
    label = f"[{data.get('id', '?')}] transcript" if isinstance(data, dict) else "transcript"
    if not p.keys(label, data, *TOP_KEYS, line):
        return _raise_or_none(p, problems, before)
    where = f"[{data.get('id', '?')}]"
    if "id" in data and (not isinstance(data["id"], str | int) or not str(data["id"]).strip()):
        p.add(line_of(data, "id"), where, f"id must be a non-empty text, got {data['id']!r}")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        p.add(line_of(data, "tags"), where, f"tags must be a list of words, got {tags!r}")
        tags = []
    seed = data.get("seed", "demo")
    if seed not in SEEDS:
        p.add(line_of(data, "seed"), where, f"seed must be one of {SEEDS}, not {seed!r}")
    now = _parse_now(p, where, data)
    turns_data = data.get("turns")
    parsed: list[Turn] = []
    if not isinstance(turns_data, list) or not turns_data:
        if "turns" in data:
            p.add(line_of(data, "turns"), where, "turns must be a non-empty list")
    else:
        for i, t in enumerate(turns_data):
            at = line_of(turns_data, i)
            if not p.keys(f"{where} turns[{i}]", t, *TURN_KEYS, at):
                continue
            if "user" in t and isinstance(t["user"], bool):  # YAML 1.1 reads yes/no/on/off as booleans
                p.add(line_of(t, "user"), f"{where} turns[{i}].user",
                      f"YAML read this as {t['user']!r}: quote the shopper's text, e.g. user: \"yes\"")
            elif "user" in t and (t["user"] is None or isinstance(t["user"], dict | list)):
                p.add(line_of(t, "user"), f"{where} turns[{i}].user", f"expected the shopper's text, got {t['user']!r}")
            expect = t.get("expect") or {}
            if p.keys(f"{where} turns[{i}].expect", expect, set(), EXPECT_KEYS, line_of(t, "expect") or at):
                check_expect(p, f"{where} turns[{i}].expect", expect)
            parsed.append(Turn(str(t.get("user", "")), plain(expect) if isinstance(expect, dict) else {}, at))
    fixtures = data.get("fixtures") or {}
    check_fixtures(p, where, fixtures, seed if seed in SEEDS else "demo", line_of(data, "fixtures") or line)
    final = data.get("final_state")
    if final is not None:
        check_final(p, where, final, line_of(data, "final_state"))
    if len(p.items) > before:
        return _raise_or_none(p, problems, before)
    raw = plain(data)
    return Transcript(id=str(data["id"]), turns=tuple(parsed), source=source,
                      description=str(data.get("description") or ""), tags=tuple(tags), now=now, seed=seed,
                      fixtures=plain(fixtures), final_state=plain(final), line=line or line_of(data),
                      raw=raw, digest=_digest(raw))


def _raise_or_none(p: Problems, given: Problems | None, before: int) -> None:
    if given is None and len(p.items) > before:
        raise TranscriptError("\n".join(p.items))
    return None


def load_file(path: Path) -> list[Transcript]:
    """Every transcript of one file; a ``TranscriptError`` lists every problem as FILE:LINE: ..."""
    try:
        text = path.read_text(encoding="utf-8")
        data = load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at, shown = "", ""
        if mark:
            at = f":{mark.line + 1}:{mark.column + 1}"
            source_lines = text.splitlines()
            if mark.line < len(source_lines):
                shown = f"\n    {source_lines[mark.line]}\n    {' ' * mark.column}^"
        raise TranscriptError(f"{path}{at}: not valid YAML: {exc.problem or exc} (put text that contains "
                              f"': ' or starts with a symbol in quotes){shown}") from exc
    except yaml.YAMLError as exc:
        raise TranscriptError(f"{path}:{str(exc).removeprefix('line ')}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read: {exc}") from exc
    if data is None:
        raise TranscriptError(f"{path}: empty file (a transcript, or a list of them, was expected)")
    p = Problems(str(path))
    if isinstance(data, list):
        out = [parse(item, str(path), line_of(data, i), p) for i, item in enumerate(data)]
    else:
        out = [parse(data, str(path), line_of(data), p)]
    if p.items:
        shown = p.items[:60] + ([f"... and {len(p.items) - 60} more"] if len(p.items) > 60 else [])
        raise TranscriptError("\n".join(shown))
    return [t for t in out if t is not None]


def find_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml")))
        elif p.is_file():
            files.append(p)
        else:
            raise TranscriptError(f"{p}: no such file or folder")
    if not files:
        raise TranscriptError(f"no transcript files (*.yaml, *.yml) in {', '.join(map(str, paths))}")
    return files


def load_paths(paths: list[Path], tags: list[str] | tuple[str, ...] = ()) -> list[Transcript]:
    """Transcripts of the files and folders (recursively); with ``tags``, those having any of them."""
    problems: list[str] = []
    transcripts: list[Transcript] = []
    for f in find_files(paths):
        try:
            transcripts += load_file(f)
        except TranscriptError as exc:  # report every bad file, not just the first
            problems.append(str(exc))
    seen: dict[str, Transcript] = {}
    for t in transcripts:
        if t.id in seen:
            first = seen[t.id]
            problems.append(f"{t.source}:{t.line}: duplicate transcript id {t.id!r} "
                            f"(first in {first.source}:{first.line})")
        seen.setdefault(t.id, t)
    if problems:
        raise TranscriptError("\n".join(problems))
    if tags:
        wanted = set(tags)
        chosen = [t for t in transcripts if wanted & set(t.tags)]
        if not chosen:
            known = sorted({tag for t in transcripts for tag in t.tags})
            raise TranscriptError(f"no transcript has any of the tags {sorted(wanted)}; tags in use: {known}")
        return chosen
    return transcripts
