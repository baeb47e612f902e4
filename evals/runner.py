"""Replaying transcripts: a fresh database per transcript, a frozen clock, models loaded once.

Each ``Runner`` (one per process) loads the models once and builds the FAQ index once, from the
repo's articles (or another ``docs_dir``) into a temporary Chroma folder; the transcripts of the run
share that index read-only (a conversation only queries it), so an eval never reads or changes the
app's own data directory. Every transcript gets its own new SQLite database (the demo shop unless
``seed: empty``, plus its fixtures) and a clock frozen at its ``now``.

``run_paths(..., jobs=N)`` runs the transcripts in N worker processes, each with its own Runner.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

from app.clock import FrozenClock
from app.config import Settings
from app.factory import Mode, Models, build_assistant, classifier, database, embedder, faq_index, generator
from app.fixtures import load_fixtures
from app.pii import mask, mask_all
from app.schema import Message, Reply
from evals.checks import check_final_state, check_turn
from evals.metrics import compute_metrics
from evals.transcript import EVAL_DEMO_SIZE, Transcript, load_paths

log = logging.getLogger(__name__)
DEFAULT_NOW = datetime(2026, 3, 15, 10, 0)
# guard verdicts that say the model's text never reached the guard (slow or failing model)
NOT_JUDGED = ("timeout", "model_error", "busy", "cancelled")


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


def turn_record(i: int, t: Transcript, reply: Reply, latency_s: float, app_budget_s: float = 0.0) -> dict[str, Any]:
    """What the report needs of one turn: what was said, what happened, what was expected.

    Texts are PII-masked like stored turns (app/pii.py): a report is read and passed around more widely
    than the database. The checks ran on the unmasked reply; ``failed.yaml`` keeps the transcript as written.
    """
    turn = t.turns[i]
    judged = not any(r in NOT_JUDGED for r in reply.guard.reasons)
    return {"index": i, "line": turn.line, "user": mask(turn.user), "reply": mask(reply.text), "intent": reply.intent,
            "route": reply.route, "confidence": reply.confidence, "sources": list(reply.sources),
            "actions": [a.to_dict() for a in reply.actions], "verified": reply.verified, "handoff": reply.handoff,
            "generated_by": reply.generated_by, "guard": list(reply.guard.reasons),
            "guard_accepted": reply.guard.accepted,
            # the model wrote a candidate: either it was sent, or the guard (or the clock) refused it
            "model_used": reply.generated_by != "template" or not reply.guard.accepted,
            "guard_judged": judged, "expect": mask_all(turn.expect),
            "failures": mask_all(check_turn(turn.expect, reply)),
            "latency_s": round(latency_s, 4), "timings": dict(reply.timings),
            # the app (shorter budget) would have sent the template instead of this model reply
            "over_app_budget": bool(app_budget_s) and reply.timings.get("generate", 0.0) > app_budget_s}


def eval_budget(settings: Settings) -> float:
    """The generation time budget of a replay (``eval_generation_time_budget_s``; 0: the app's own)."""
    return settings.eval_generation_time_budget_s or settings.generation_time_budget_s


class Runner:
    def __init__(self, settings: Settings, mode: Mode = Mode(), workdir: Path | None = None,
                 docs_dir: Path | None = None, models: Models | None = None) -> None:
        """``models``: reuse loaded models (tests); the index is still built fresh from ``docs_dir``."""
        from knowledge_base.loader import DOCS_DIR, load_chunks

        self._tmp = tempfile.TemporaryDirectory(prefix="shopdesk-eval-") if workdir is None else None
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.base = settings.replace(intent_model_dir=str(settings.resolved_intent_model_dir),
                                     model_cache_dir_override=str(settings.model_cache_dir.resolve()),
                                     data_dir=settings.data_dir.resolve(),
                                     generation_time_budget_s=eval_budget(settings))
        self.app_budget_s = settings.generation_time_budget_s
        self.docs_dir = Path(docs_dir or DOCS_DIR)
        index_settings = self.base.replace(chroma_path=str(self.workdir / "chroma"), chroma_host="")
        emb = models.embedder if models else embedder(self.base, mode)
        index = faq_index(index_settings, emb)
        index.sync(load_chunks(self.docs_dir), emb)
        self.models = Models(emb, models.classifier if models else classifier(self.base, emb, mode),
                             models.generator if models else generator(self.base, mode), index)
        # load the weights now, so the first transcript's latency is not the model load
        self.models.classifier.classify("hello")
        self.models.generator.warm_up()

    def close(self) -> None:
        if self._tmp:
            self._tmp.cleanup()

    def run(self, t: Transcript) -> dict[str, Any]:
        """Replay one transcript; a crash is reported as a failed transcript, never raised."""
        now = t.now or DEFAULT_NOW
        tdir = self.workdir / f"t-{abs(hash(t.id)) % 10**10}"
        shutil.rmtree(tdir, ignore_errors=True)
        settings = dataclasses.replace(self.base, data_dir=tdir, database_url="")
        started = time.perf_counter()
        turns: list[dict[str, Any]] = []
        final_failures: list[str] = []
        final: dict[str, Any] | None = None
        error = None
        engine = database(settings)
        try:
            load_fixtures(engine, merged_fixtures(t, now), source=t.source)
            assistant = build_assistant(settings, self.models, clock=FrozenClock(now), engine=engine)
            for i, turn in enumerate(t.turns):
                turn_started = time.perf_counter()
                reply = assistant.respond(Message(f"eval-{t.id}", turn.user, channel="eval", client_id=f"eval-{t.id}"))
                turns.append(turn_record(i, t, reply, time.perf_counter() - turn_started, self.app_budget_s))
            if t.final_state is not None:
                order_ids = [o["id"] for o in t.fixtures.get("orders") or []]
                actual = assistant.c.orders.store.snapshot(order_ids)
                final_failures = check_final_state(t.final_state, actual)
                final = {"expected": t.final_state, "actual": {k: actual.get(k, []) for k in t.final_state}}
        except Exception as exc:  # a bug in the assistant fails this transcript, not the whole run
            log.exception("transcript %s crashed", t.id)
            error = mask(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
        finally:
            engine.dispose()
            shutil.rmtree(tdir, ignore_errors=True)
        passed = error is None and not final_failures and all(not x["failures"] for x in turns)
        return {"id": t.id, "source": t.source, "line": t.line, "description": t.description, "tags": list(t.tags),
                "digest": t.digest, "passed": passed, "turns": turns, "final_failures": final_failures,
                "final_state": final, "error": error, "duration_s": round(time.perf_counter() - started, 3)}


# ---- worker processes ------------------------------------------------------------------------------
_WORKER: Runner | None = None


def _init_worker(settings: Settings, mode: Mode, docs_dir: Path | None, threads: int) -> None:
    global _WORKER
    logging.getLogger().setLevel(logging.WARNING)
    if threads and not mode.fake_models:
        import torch

        torch.set_num_threads(threads)
        settings = settings.replace(threads=threads)
    _WORKER = Runner(settings, mode, docs_dir=docs_dir)


def _run_in_worker(t: Transcript) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(t)


def _run_parallel(transcripts: list[Transcript], settings: Settings, mode: Mode, docs_dir: Path | None,
                  jobs: int, done: Callable[[dict[str, Any]], None]) -> None:
    # spawn, not fork: torch and the tokenizers hold threads and locks a forked child would inherit
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(settings, mode, docs_dir, threads)) as pool:
        futures = [pool.submit(_run_in_worker, t) for t in transcripts]
        for future in as_completed(futures):
            done(future.result())


# ---- a whole run -----------------------------------------------------------------------------------
def run_transcripts(transcripts: list[Transcript], settings: Settings, mode: Mode = Mode(),
                    out: TextIO | None = None, jobs: int = 1, docs_dir: Path | None = None,
                    progress: bool = False, models: Models | None = None) -> dict[str, Any]:
    from tqdm import tqdm

    started = time.perf_counter()
    by_id: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(transcripts), desc="transcripts", unit="transcript", disable=not progress)

    def done(result: dict[str, Any]) -> None:
        by_id[result["id"]] = result
        if out:
            with tqdm.external_write_mode(file=out):
                print_result(result, out)
        bar.set_postfix(failed=sum(not r["passed"] for r in by_id.values()), refresh=False)
        bar.update(1)

    try:
        if jobs > 1 and len(transcripts) > 1:
            _run_parallel(transcripts, settings, mode, docs_dir, min(jobs, len(transcripts)), done)
        else:
            runner = Runner(settings, mode, docs_dir=docs_dir, models=models)
            try:
                for t in transcripts:
                    done(runner.run(t))
            finally:
                runner.close()
    finally:
        bar.close()
    results = [by_id[t.id] for t in transcripts]  # input order, whatever order the workers finished in
    summary = summarise(results)
    summary["run"] = {"at": datetime.now().isoformat(timespec="seconds"),
                      "seconds": round(time.perf_counter() - started, 1), "jobs": jobs,
                      "fake_models": mode.fake_models, "docs_dir": str(docs_dir or "knowledge_base/docs"),
                      "generator": "template" if mode.fake_models else settings.generator,
                      "generation_time_budget_s": eval_budget(settings),
                      "app_generation_time_budget_s": settings.generation_time_budget_s,
                      "cpu_count": os.cpu_count()}
    if out:
        print_summary(summary, out)
    return summary


def run_paths(paths: list[Path], settings: Settings, mode: Mode = Mode(), out: TextIO | None = None,
              jobs: int = 1, tags: list[str] | tuple[str, ...] = (), docs_dir: Path | None = None,
              progress: bool = False, models: Models | None = None) -> dict[str, Any]:
    """Load (strictly) and replay every transcript under ``paths``; the summary the report is made of."""
    return run_transcripts(load_paths(paths, tags), settings, mode, out, jobs, docs_dir, progress, models)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [r["id"] for r in results if not r["passed"]]
    n_turns = sum(len(r["turns"]) for r in results)
    turn_pass = sum(1 for r in results for x in r["turns"] if not x["failures"])
    return {"total": len(results), "passed": len(results) - len(failed), "failed": failed,
            "turns": {"total": n_turns, "passed": turn_pass}, "metrics": compute_metrics(results),
            "results": results}


def print_result(result: dict[str, Any], out: TextIO) -> None:
    out.write(f"{'PASS' if result['passed'] else 'FAIL'} {result['id']}  ({result['source']}:{result['line']})\n")
    for x in result["turns"]:
        mark = "ok " if not x["failures"] else "BAD"
        out.write(f"  {mark} {x['index'] + 1}. {x['user'][:60]!r} -> {x['route']} ({x['intent']}, "
                  f"{x['confidence']:.2f}) {x['latency_s']:.2f}s\n")
        for f in x["failures"]:
            out.write(f"        {f}\n")
        if x["failures"]:
            out.write(f"        reply: {x['reply'][:300]!r}\n")
    for f in result["final_failures"]:
        out.write(f"  BAD final state: {f}\n")
    if result.get("error"):
        out.write(f"  CRASH {result['error'].splitlines()[0]}\n")
    out.flush()


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    m = summary["metrics"]
    out.write(f"\n{summary['passed']}/{summary['total']} transcripts passed "
              f"({summary['turns']['passed']}/{summary['turns']['total']} turns) in {summary['run']['seconds']}s\n")
    parts = [f"{label} {m[key]['rate']:.1%} (n={m[key]['n']})" for key, label in (
        ("route_accuracy", "route accuracy"), ("intent_accuracy", "intent accuracy"),
        ("retrieval_hit_rate", "retrieval hit rate"), ("guard_acceptance", "guard acceptance")) if m[key]["n"]]
    lat = m["latency"]
    if lat["n"]:
        parts.append(f"latency p50 {lat['p50_s']:.2f}s p95 {lat['p95_s']:.2f}s")
    out.write("; ".join(parts) + "\n")
    if summary["failed"]:
        out.write("failed: " + ", ".join(summary["failed"]) + "\n")
    out.flush()
