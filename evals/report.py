"""The eval report: ``DIR/report.json``, a self-contained ``DIR/report.html`` and ``DIR/failed.yaml``.

The HTML page has no external assets (inline CSS, charts as base64 PNG), so it can be mailed or
attached to a CI run and opened anywhere. It is written for support staff as much as engineers:
every failed turn shows what the shopper said, what the assistant replied and, check by check, what
was expected against what happened. ``failed.yaml`` holds the failed transcripts exactly as written,
so ``shopdesk eval DIR/failed.yaml`` re-runs just those.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from evals import plots
from evals.gate import GateResult
from evals.transcript import Transcript, load_file

TEMPLATES = Path(__file__).parent / "templates"
# the guard's rejection kinds (app/guard.py) in words
REASON_WORDS = {"missing": "left out a fact it had to state",
                "invented": "stated a number, id or date it was not given",
                "ungrounded": "said things the help article does not",
                "promise": "promised a refund, discount or credit", "length": "too long",
                "repetition": "repeated itself", "leak": "echoed its instructions",
                "timeout": "ran out of time", "model_error": "the model failed"}
CHECK_ORDER = ("route", "intent", "verified", "handoff", "actions", "sources", "reply_contains",
               "reply_contains_any", "reply_not_contains", "reply_matches")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _quoted(values: Any) -> str:
    return ", ".join(f"“{v}”" for v in _list(values))


def _actions(actions: list[Any]) -> str:
    if not actions:
        return "no change to any order or ticket"
    return "; ".join(f"{name} ({', '.join(f'{k}={v}' for k, v in (args or {}).items()) or 'any details'})"
                     for a in actions for name, args in a.items())


def expectation_rows(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check of a turn: what was expected, what happened, in plain words, and whether it held."""
    failed_keys = {f.split(":", 1)[0] for f in turn["failures"]}
    expect, rows = turn["expect"], []
    for key in sorted(expect, key=lambda k: CHECK_ORDER.index(k) if k in CHECK_ORDER else 99):
        value = expect[key]
        if key == "route":
            wanted, actual = f"handled as {value}", f"handled as {turn['route']}"
        elif key == "intent":
            wanted, actual = f"understood as {value}", f"understood as {turn['intent']} ({turn['confidence']:.2f})"
        elif key == "verified":
            wanted = "shopper verified" if value else "shopper not verified"
            actual = "shopper verified" if turn["verified"] else "shopper not verified"
        elif key == "handoff":
            wanted = "a person is offered" if value else "no person offered"
            actual = "a person is offered" if turn.get("handoff") else "no person offered"
        elif key == "actions":
            wanted, actual = _actions(_list(value)), _actions(turn["actions"])
        elif key == "sources":
            wanted = f"cites {_quoted(value)}"
            actual = f"cites {_quoted(turn['sources'])}" if turn["sources"] else "cites no article"
        else:
            wanted = {"reply_contains": "reply mentions all of ", "reply_contains_any": "reply mentions one of ",
                      "reply_not_contains": "reply does not mention ",
                      "reply_matches": "reply matches the pattern "}.get(key, f"{key}: ") + _quoted(value)
            actual = "see the reply above"
        rows.append({"check": key, "expected": wanted, "actual": actual, "ok": key not in failed_keys,
                     "messages": [f.split(":", 1)[1].strip() for f in turn["failures"] if f.startswith(key + ":")]})
    return rows


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _charts(summary: dict[str, Any]) -> dict[str, str]:
    m = summary["metrics"]
    lat = m["latency"]
    seconds = [x["latency_s"] for r in summary["results"] for x in r["turns"]]
    return {
        "confusion": _b64(plots.confusion_png(m["confusion"]["labels"], m["confusion"]["matrix"])),
        "latency": _b64(plots.latency_png(seconds, {"p50": lat["p50_s"], "p95": lat["p95_s"]})),
        "by_tag": _b64(plots.rates_png(m["by_tag"], "Conversations passed, per tag")),
        "by_route": _b64(plots.rates_png(m["by_route"], "Turns passed, per expected route")),
    }


def render_html(summary: dict[str, Any], gate: GateResult | None = None) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda r: "—" if r is None else f"{r:.1%}"
    env.filters["secs"] = lambda s: f"{s:.2f} s"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=1, default=str, ensure_ascii=False)
    failed = [r for r in summary["results"] if not r["passed"]]
    rows = {(r["id"], x["index"]): expectation_rows(x) for r in failed for x in r["turns"]}
    return env.get_template("report.html.j2").render(
        s=summary, m=summary["metrics"], failed=failed, rows=rows, charts=_charts(summary), reason_words=REASON_WORDS,
        gate=gate.to_dict() if gate else None, gate_text=gate.describe() if gate else "")


def failed_transcripts_yaml(summary: dict[str, Any], transcripts: Sequence[Transcript] = ()) -> str:
    """The failed transcripts as written (a YAML list ``shopdesk eval`` loads), with where each came from."""
    raw = {t.id: t for t in transcripts}
    out = []
    for r in summary["results"]:
        if r["passed"]:
            continue
        t = raw.get(r["id"]) or next((x for x in load_file(Path(r["source"])) if x.id == r["id"]), None)
        if t is not None:
            out.append(t)
    header = ["# Failed transcripts of an eval run, as written in their files; re-run them with",
              "#   shopdesk eval THIS_FILE", *[f"#   {t.id}: {t.source}:{t.line}" for t in out], ""]
    body = yaml.safe_dump([t.raw for t in out], sort_keys=False, allow_unicode=True, width=110) if out else "[]\n"
    return "\n".join(header) + body


def write_report(summary: dict[str, Any], out_dir: Path, gate: GateResult | None = None,
                 transcripts: Sequence[Transcript] = ()) -> dict[str, Path]:
    """Write report.json, report.html and (when something failed) failed.yaml into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**summary, "gate": gate.to_dict() if gate else None}
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html", "failed": out_dir / "failed.yaml"}
    paths["json"].write_text(json.dumps(data, indent=1, default=str, ensure_ascii=False), encoding="utf-8")
    paths["html"].write_text(render_html(summary, gate), encoding="utf-8")
    if summary["failed"]:
        paths["failed"].write_text(failed_transcripts_yaml(summary, transcripts), encoding="utf-8")
    else:
        paths["failed"].unlink(missing_ok=True)  # a stale list from an earlier run would mislead
        del paths["failed"]
    return paths
