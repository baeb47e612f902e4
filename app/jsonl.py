"""The JSONL input of `shopdesk classify` and `shopdesk search`: one {"text": ...} object a line.

Read at the CLI edge, once for both commands: every bad line is reported and nothing is processed
when any line is bad.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.errors import InputError

MAX_REPORTED = 10  # bad lines listed in one error


def read_text_lines(lines: Iterable[str], source: str, verb: str, example: str) -> list[dict[str, Any]]:
    """The objects of the non-blank lines; ``verb`` and ``example`` word the error for the command."""
    records, problems = [], []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            problems.append(f'line {n}: expected an object with a non-empty "text" string, got {line.strip()[:80]}')
            continue
        records.append(obj)
    if problems:
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise InputError(f"{source}: {len(problems)} bad line(s), nothing was {verb} "
                         f'(each line must be like {{"text": "{example}"}}):\n  '
                         + "\n  ".join(problems[:MAX_REPORTED]) + more)
    return records


def read_text_file(file: str | None, verb: str, example: str) -> list[dict[str, Any]]:
    """Read a JSONL file, or stdin for ``-`` or no file."""
    if file in (None, "-"):
        return read_text_lines(sys.stdin, "stdin", verb, example)
    path = Path(file)
    if not path.is_file():
        raise InputError(f"{path}: no such file (give a JSONL file, or - to read stdin)")
    with path.open(encoding="utf-8") as f:
        return read_text_lines(f, str(path), verb, example)
