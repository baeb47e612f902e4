"""What `shopdesk eval` does, as importable functions (the CLI only parses arguments)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from app.config import Settings
from app.errors import TranscriptError
from app.factory import Mode, Models


@dataclass(frozen=True)
class EvalOutcome:
    exit_code: int  # 0: all passed (or, with a baseline, the gate passed); 1: failures or the gate failed
    summary: dict[str, Any]
    gate: Any = None  # evals.gate.GateResult when a baseline was given
    files: dict[str, Path] | None = None


def run_eval(paths: list[Path], settings: Settings, mode: Mode = Mode(), *, report_dir: Path | None = None,
             baseline: Path | None = None, tags: tuple[str, ...] = (), jobs: int = 1, json_path: Path | None = None,
             tolerance: float | None = None, docs_dir: Path | None = None, out: TextIO | None = None,
             progress: bool = False, models: Models | None = None) -> EvalOutcome:
    """Replay, report, gate; ``out`` gets the per-turn lines and the summary (the CLI passes stdout).

    Bad input (transcripts, baseline, options) raises before any model loads."""
    from evals.gate import compare, load_report
    from evals.report import write_report
    from evals.runner import run_transcripts
    from evals.transcript import load_paths

    if jobs < 1:
        raise TranscriptError(f"--jobs must be at least 1, not {jobs}")
    if docs_dir is not None and not Path(docs_dir).is_dir():
        raise TranscriptError(f"--docs {docs_dir}: no such folder of help-centre articles")
    tol = settings.eval_gate_tolerance if tolerance is None else tolerance
    if not 0.0 <= tol <= 1.0:
        raise TranscriptError(f"--tolerance must be between 0 and 1 (0.02 = 2 points), not {tol}")
    base = load_report(baseline) if baseline else None  # a missing baseline fails now, not after the run
    transcripts = load_paths(paths, tags)
    summary = run_transcripts(transcripts, settings, mode, out=out, jobs=jobs, docs_dir=docs_dir, progress=progress,
                              models=models)
    gate = compare(summary, base, tol, str(baseline)) if base is not None else None
    if gate is not None:
        summary["gate"] = gate.to_dict()
        if out:
            out.write(gate.describe() + "\n")
    files = write_report(summary, report_dir, gate, transcripts) if report_dir else None
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=1, default=str, ensure_ascii=False), encoding="utf-8")
    if out and files:
        out.write("report: " + ", ".join(str(p) for p in files.values()) + "\n")
    code = (0 if gate.passed else 1) if gate is not None else (0 if not summary["failed"] else 1)
    return EvalOutcome(code, summary, gate, files)
