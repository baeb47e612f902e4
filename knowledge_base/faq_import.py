"""Importing a shop's existing question/answer pairs as knowledge-base articles.

Input: CSV with a header row of ``question``, ``answer`` and optionally ``id``, ``url``, ``category``;
or JSON, a list of objects with the same keys. Each pair becomes one markdown article (title = the
question, body = the answer) in the import folder under the data dir, beside the repo's articles, and
is indexed with them. A pair keeps its ``id`` as doc id, else gets one made from its question, so
re-importing an edited answer updates the same article.

All or nothing: every row is checked first and all bad rows are reported by line; the new folder is
written beside the old one and swapped in, so a failure never leaves some pairs imported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge_base.errors import FaqImportError

IMPORT_DIR_NAME = "faq_imported"  # under the data dir
FIELDS = ("question", "answer", "id", "url", "category")
REQUIRED = ("question", "answer")
DEFAULT_CATEGORY = "faq"
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 20_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class FaqPair:
    id: str
    question: str
    answer: str
    url: str
    category: str
    line: int  # where the row starts in the source file (for messages)


@dataclass(frozen=True)
class ImportResult:
    directory: Path
    added: int
    updated: int
    removed: int  # earlier imported pairs dropped by ``replace``
    total: int  # imported pairs in the folder now


def content_id(question: str) -> str:
    """A doc id from the question: readable slug plus a hash, stable under case and spacing changes."""
    norm = " ".join(question.lower().split())
    slug = "-".join(re.findall(r"[a-z0-9]+", norm)[:6])[:48].strip("-")
    digest = hashlib.sha256(norm.encode()).hexdigest()[:8]
    return f"faq-{slug}-{digest}" if slug else f"faq-{digest}"


def read_pairs(path: Path, taken_ids: dict[str, str] | None = None) -> list[FaqPair]:
    """Parse and check a CSV or JSON file; ``taken_ids`` maps ids already used (e.g. repo articles) to where."""
    source = str(path)
    if not path.is_file():
        raise FaqImportError(source, ["no such file"])
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise FaqImportError(source, [f"unknown file type {suffix or '(none)'!r}: use a .csv or .json file"])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FaqImportError(source, [f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"]) from exc
    rows = _csv_rows(text, source) if suffix == ".csv" else _json_rows(text, source)
    return check_rows(rows, source, taken_ids or {})


def _csv_rows(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FaqImportError(source, ["the file is empty: expected a header row question,answer[,id,url,category]"]) \
            from None
    except csv.Error as exc:
        raise FaqImportError(source, [f"line 1: {exc}"]) from exc
    columns = [h.strip().lower() for h in header]
    problems = _header_problems(columns)
    if problems:
        raise FaqImportError(source, [f"line 1 (header): {p}" for p in problems])
    rows: list[tuple[int, dict[str, Any]]] = []
    line = reader.line_num + 1
    try:
        for values in reader:
            if any(v.strip() for v in values):
                if len(values) != len(columns):
                    rows.append((line, {"__error__": f"{len(values)} values for {len(columns)} columns "
                                                     "(quote values that contain commas)"}))
                else:
                    rows.append((line, dict(zip(columns, values, strict=True))))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FaqImportError(source, [f"line {reader.line_num}: {exc}"]) from exc
    return rows


def _header_problems(columns: list[str]) -> list[str]:
    problems = []
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        problems.append(f"unknown column(s) {unknown}; allowed: {list(FIELDS)}")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append(f"missing column(s) {missing}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        problems.append(f"repeated column(s) {duplicated}")
    return problems


def _json_rows(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaqImportError(source, [f"line {exc.lineno}: not valid JSON: {exc.msg}"]) from exc
    if not isinstance(data, list):
        raise FaqImportError(source, ['expected a JSON list of objects like {"question": ..., "answer": ...}'])
    # json.loads keeps no positions: walk the list again with raw_decode to know where each item starts
    decoder, pos, rows = json.JSONDecoder(), text.index("[") + 1, []
    for item in data:
        while text[pos] in " \t\r\n,":
            pos += 1
        line = text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, pos)
        if not isinstance(item, dict):
            rows.append((line, {"__error__": f"expected an object, got {type(item).__name__}"}))
        else:
            unknown = sorted(set(item) - set(FIELDS))
            bad = {k: v for k, v in item.items() if v is not None and not isinstance(v, str | int)}
            if unknown:
                rows.append((line, {"__error__": f"unknown key(s) {unknown}; allowed: {list(FIELDS)}"}))
            elif bad:
                rows.append((line, {"__error__": f"{sorted(bad)} must be text"}))
            else:
                rows.append((line, {k: "" if v is None else str(v) for k, v in item.items()}))
    return rows


def check_rows(rows: Iterable[tuple[int, dict[str, Any]]], source: str, taken_ids: dict[str, str]) -> list[FaqPair]:
    """Every problem of every row, or the pairs; an id may not repeat nor clash with ``taken_ids``."""
    problems: list[str] = []
    pairs: list[FaqPair] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        if "__error__" in row:
            problems.append(f"line {line}: {row['__error__']}")
            continue
        question = " ".join(str(row.get("question") or "").split())
        answer = str(row.get("answer") or "").strip()
        url = str(row.get("url") or "").strip()
        category = str(row.get("category") or "").strip() or DEFAULT_CATEGORY
        given = str(row.get("id") or "").strip()
        doc_id = given or content_id(question)
        errors = []
        if not question:
            errors.append("the question is empty")
        elif len(question) > MAX_QUESTION_CHARS:
            errors.append(f"the question has {len(question)} characters (at most {MAX_QUESTION_CHARS})")
        if not answer:
            errors.append("the answer is empty")
        elif len(answer) > MAX_ANSWER_CHARS:
            errors.append(f"the answer has {len(answer)} characters (at most {MAX_ANSWER_CHARS})")
        if url and not re.match(r"^https?://\S+$", url):
            errors.append(f"url {url!r} is not an http(s) address")
        if given and not _ID.match(given):
            errors.append(f"id {given!r} may use only letters, digits, '.', '_' and '-' (at most 100)")
        elif doc_id in taken_ids:
            errors.append(f"id {doc_id!r} is already used by {taken_ids[doc_id]}; give this pair another id")
        elif doc_id in first_line and question:
            same = "the same question as" if not given else "the same id as"
            errors.append(f"{same} line {first_line[doc_id]}")
        if errors:
            problems.append(f"line {line}: " + "; ".join(errors))
            continue
        first_line[doc_id] = line
        pairs.append(FaqPair(doc_id, question, answer, url, category, line))
    if problems:
        raise FaqImportError(source, problems)
    if not pairs:
        raise FaqImportError(source, ["no question/answer pairs in the file"])
    return pairs


def to_markdown(pair: FaqPair, source: str = "") -> str:
    meta = {"id": pair.id, "title": pair.question, "category": pair.category, "url": pair.url}
    if source:
        meta["imported_from"] = f"{source} line {pair.line}"
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{front}---\n\n{pair.answer}\n"


def write_imported(pairs: list[FaqPair], directory: Path, replace: bool = False, source: str = "") -> ImportResult:
    """Write the pairs into ``directory`` as one swap: a new folder is filled, then renamed into place.

    Without ``replace``, earlier imported pairs stay and a pair with the same id is updated.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    before = {p.stem for p in directory.glob("*.md")} if directory.is_dir() else set()
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-new-", dir=directory.parent))
    old = directory.with_name(f".{directory.name}-old-{staging.name.rsplit('-', 1)[-1]}")
    try:
        if not replace and directory.is_dir():
            for path in directory.glob("*.md"):
                shutil.copy2(path, staging / path.name)
        for pair in pairs:
            (staging / f"{pair.id}.md").write_text(to_markdown(pair, source), encoding="utf-8")
        if directory.exists():
            directory.rename(old)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not directory.exists():
            old.rename(directory)  # put the previous import back
        raise
    shutil.rmtree(old, ignore_errors=True)
    ids = {p.id for p in pairs}
    kept = before if not replace else set()
    return ImportResult(directory, added=len(ids - before), updated=len(ids & before),
                        removed=len(before - ids) if replace else 0, total=len(kept | ids))
