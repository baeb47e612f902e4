"""Replaying transcripts: a fresh database per transcript, a frozen clock, shared models and index.

Models load once per run; the FAQ index is built once per run from the repo's articles into a
temporary Chroma folder, so an eval never reads or changes the app's own data directory.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from app.clock import FrozenClock
from app.config import Settings
from app.factory import Mode, Models, build_assistant, build_index, classifier, database, embedder, faq_index, generator
from app.fixtures import load_fixtures
from app.schema import Message
from evals.checks import check_final_state, check_turn
from evals.transcript import Transcript, load_paths

DEFAULT_NOW = datetime(2026, 3, 15, 10, 0)
EVAL_DEMO_SIZE = {"customers": 60, "orders": 200}


def merged_fixtures(t: Transcript, now: datetime) -> dict[str, Any]:
    """The demo shop (unless ``seed: empty``) with the transcript's fixtures; fixture ids win."""
    fixtures = {k: list(v or []) for k, v in t.fixtures.items()}
    if t.seed == "empty":
        return fixtures
    from app.seed import demo_fixtures

    demo = demo_fixtures(now=now, **EVAL_DEMO_SIZE)
    own = {table: {str(r.get("id", r.get("sku"))) for r in fixtures.get(table, [])} for table in
           ("customers", "orders", "returns", "products")}
    own_products = {str(r["sku"]) for r in fixtures.get("products", [])}
    out: dict[str, list[dict[str, Any]]] = {}
    for table in ("customers", "products", "orders", "returns"):
        keep = [r for r in demo.get(table, [])
                if str(r.get("id", r.get("sku"))) not in own[table]
                and not (table == "products" and r["sku"] in own_products)
                and not (table == "returns" and r["order"] in own["orders"])]
        out[table] = keep + fixtures.get(table, [])
    return out


class Runner:
    def __init__(self, settings: Settings, mode: Mode = Mode(), workdir: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="shopdesk-eval-") if workdir is None else None
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.base = settings.replace(intent_model_dir=str(settings.resolved_intent_model_dir),
                                     data_dir=settings.data_dir.resolve())
        index_settings = self.base.replace(chroma_path=str(self.workdir / "chroma"), chroma_host="")
        emb = embedder(self.base, mode)
        build_index(index_settings, emb)
        self.models = Models(emb, classifier(self.base, emb, mode), generator(self.base, mode),
                             faq_index(index_settings, emb))

    def close(self) -> None:
        if self._tmp:
            self._tmp.cleanup()

    def run(self, t: Transcript) -> dict[str, Any]:
        now = t.now or DEFAULT_NOW
        tdir = self.workdir / f"t-{abs(hash(t.id)) % 10**10}"
        settings = dataclasses.replace(self.base, data_dir=tdir, database_url="")
        engine = database(settings)
        try:
            load_fixtures(engine, merged_fixtures(t, now), source=t.source)
            assistant = build_assistant(settings, self.models, clock=FrozenClock(now), engine=engine)
            session_id = f"eval-{t.id}"
            turns = []
            for i, turn in enumerate(t.turns):
                started = time.perf_counter()
                reply = assistant.respond(Message(session_id, turn.user, channel="eval", client_id=f"eval-{t.id}"))
                failures = check_turn(turn.expect, reply)
                turns.append({"index": i, "user": turn.user, "reply": reply.text, "intent": reply.intent,
                              "route": reply.route, "confidence": reply.confidence, "sources": list(reply.sources),
                              "actions": [a.to_dict() for a in reply.actions], "verified": reply.verified,
                              "generated_by": reply.generated_by, "guard": list(reply.guard.reasons),
                              "expect": turn.expect, "failures": failures,
                              "latency_s": round(time.perf_counter() - started, 4)})
            final_failures: list[str] = []
            if t.final_state is not None:
                order_ids = [o["id"] for o in t.fixtures.get("orders") or []]
                final_failures = check_final_state(t.final_state, assistant.c.orders.store.snapshot(order_ids))
        finally:
            engine.dispose()
        passed = not final_failures and all(not x["failures"] for x in turns)
        return {"id": t.id, "source": t.source, "tags": list(t.tags), "passed": passed, "turns": turns,
                "final_failures": final_failures}


def run_paths(paths: list[Path], settings: Settings, mode: Mode = Mode(), out: TextIO | None = None) -> dict[str, Any]:
    transcripts = load_paths(paths)
    runner = Runner(settings, mode)
    results = []
    try:
        for t in transcripts:
            result = runner.run(t)
            results.append(result)
            if out:
                _print(result, out)
    finally:
        runner.close()
    failed = [r["id"] for r in results if not r["passed"]]
    n_turns = sum(len(r["turns"]) for r in results)
    turn_pass = sum(1 for r in results for x in r["turns"] if not x["failures"])
    summary = {"total": len(results), "passed": len(results) - len(failed), "failed": failed,
               "turns": {"total": n_turns, "passed": turn_pass}, "results": results}
    if out:
        out.write(f"\n{summary['passed']}/{summary['total']} transcripts passed "
                  f"({turn_pass}/{n_turns} turns)\n")
        if failed:
            out.write("failed: " + ", ".join(failed) + "\n")
    return summary


def _print(result: dict[str, Any], out: TextIO) -> None:
    out.write(f"{'PASS' if result['passed'] else 'FAIL'} {result['id']}\n")
    for x in result["turns"]:
        mark = "ok " if not x["failures"] else "BAD"
        out.write(f"  {mark} {x['index'] + 1}. {x['user'][:60]!r} -> {x['route']} ({x['intent']}, "
                  f"{x['confidence']:.2f}) {x['latency_s']:.2f}s\n")
        for f in x["failures"]:
            out.write(f"        {f}\n        reply: {x['reply'][:300]!r}\n")
    for f in result["final_failures"]:
        out.write(f"  BAD final state: {f}\n")
    out.flush()
