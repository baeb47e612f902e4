"""`shopdesk loadtest` (issue 10): N concurrent sessions x M turns against a real server process.

    set up   a work dir: a fresh SQLite database (or --database-url), the FAQ index, one load-test
             customer per session with a delivered order to return and an order in transit (app/loadtest_shop.py)
    serve    `shopdesk serve --workers W` on loopback with the per-client rate limit off for this server
             (every session comes from 127.0.0.1; SHOPDESK_RATE_LIMIT_PER_MINUTE=0), or --url: a running one
    drive    the sessions at once through POST /api/v1/chat: small talk, order status with verification,
             FAQ, a return to its "yes" (some sessions double-click it), a handoff (app/loadtest_driver.py)
    verify   the database against the replies: each confirmed return exactly once, no turn lost
             (app/loadtest_verify.py)
    report   errors, latency p50/p95/p99, throughput, load average; JSON with --json

By default the server runs the deterministic fakes (keyword classifier, hashing embedder, template
replies): the run measures the server, database and flows, not the small model's speed on this CPU.
``real_models`` uses the prepared models of the data dir (`shopdesk prepare`) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.clock import SystemClock
from app.config import Settings
from app.db import display_url, make_engine, migrate
from app.errors import InputError
from app.factory import Mode, build_index, embedder
from app.loadtest_driver import Driver, SessionRecord
from app.loadtest_shop import load_shop
from app.loadtest_verify import verify
from app.server_process import ServerProcess

FAKE_MODELS = "fakes: keyword classifier, hashing embedder, template replies (--fake-models)"
REAL_MODELS = "real: trained intent model, MiniLM embeddings, the configured generator"


@dataclass(frozen=True)
class LoadConfig:
    sessions: int = 50
    turns: int = 20
    timeout_s: float = 600.0  # no new turn starts after this; turns in flight get request_timeout_s more
    request_timeout_s: float = 60.0
    workers: int = 1  # server worker processes (started servers only)
    url: str = ""  # drive this running server instead of starting one (needs database_url)
    database_url: str = ""  # empty: a fresh SQLite database in the work dir
    real_models: bool = False
    double_yes_every: int = 4  # one session in this many sends its "yes" twice at once
    keepalive: bool = False  # False: a new connection per turn, so turns spread over the workers
    work_dir: str = ""  # empty: a temporary directory, removed afterwards unless keep
    keep: bool = False

    def check(self) -> None:
        if self.sessions < 1 or self.turns < 1:
            raise InputError("--sessions and --turns must be at least 1")
        if self.timeout_s <= 0 or self.request_timeout_s <= 0:
            raise InputError("--timeout and --request-timeout must be positive (seconds)")
        if self.workers < 1:
            raise InputError("--workers must be at least 1")
        if self.url and not self.database_url:
            raise InputError("--url needs --database-url: the database that server uses, for the load-test "
                             "customers and the checks afterwards")


def run_loadtest(settings: Settings, config: LoadConfig, progress: bool = True) -> dict[str, Any]:
    config.check()
    work = Path(config.work_dir or tempfile.mkdtemp(prefix="shopdesk-loadtest-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    db_url = config.database_url or f"sqlite:///{work / 'load.db'}"
    engine = make_engine(db_url)
    try:
        migrate(engine)  # the server migrates too; the customers go in first
        shoppers = load_shop(engine, config.sessions, settings.order_prefix, SystemClock().now())
        server = None if config.url else ServerProcess(server_env(settings, work, db_url, config.real_models),
                                                       work / "server.log", workers=config.workers,
                                                       fake_models=not config.real_models)
        url = config.url or server.start().url  # type: ignore[union-attr]
        try:
            result = _drive(url, shoppers, config, progress)
        finally:
            if server is not None:
                server.stop()
        checks = verify(engine, result["sessions"])
    finally:
        engine.dispose()
        if not config.keep and not config.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return build_report(config, result, checks, display_url(db_url), url, work if config.keep else None)


def server_env(settings: Settings, work: Path, db_url: str, real_models: bool = False) -> dict[str, str]:
    """The settings (environment) of a server started for a test: this work dir and database, no per-client
    rate limit; the fakes' FAQ index built in the work dir, or the prepared models of ``settings``."""
    env = {"SHOPDESK_DATA_DIR": str(work), "SHOPDESK_DATABASE_URL": db_url, "SHOPDESK_RATE_LIMIT_PER_MINUTE": "0"}
    if real_models:  # the prepared models stay where `shopdesk prepare` put them
        model_dir = settings.resolved_intent_model_dir
        if not model_dir.is_dir() or not any(model_dir.iterdir()):
            raise InputError(f"no trained intent model in {model_dir}: run `shopdesk prepare` (or `make run`) first, "
                             "or leave out --real-models")
        env.update(SHOPDESK_INTENT_MODEL_DIR=str(model_dir.resolve()),
                   SHOPDESK_MODEL_CACHE_DIR_OVERRIDE=str(settings.model_cache_dir.resolve()))
        if not settings.chroma_host:
            env["SHOPDESK_CHROMA_PATH"] = str(settings.resolved_chroma_path.resolve())
    else:  # the fakes' FAQ index (hashing embeddings), built here in a second
        mode = Mode(fake_models=True)
        local = settings.replace(data_dir=work, chroma_path=str(work / "chroma"))
        build_index(local, embedder(local, mode))
        env["SHOPDESK_CHROMA_PATH"] = local.chroma_path
    return env


def _drive(url: str, shoppers: list, config: LoadConfig, progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    load = os.getloadavg()
    bar = tqdm(total=config.sessions * config.turns, desc="load test", unit="turn", disable=not progress)
    peak = [load[0]]

    async def sample_load(stop: asyncio.Event) -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], os.getloadavg()[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def main() -> list[SessionRecord]:
        driver = Driver(url, shoppers, config.turns, time.monotonic() + config.timeout_s, config.request_timeout_s,
                        config.double_yes_every, on_turn=lambda: bar.update(1), keepalive=config.keepalive)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_load(stop))
        try:
            return await driver.run()
        finally:
            stop.set()
            await sampler

    started = time.perf_counter()
    try:
        sessions = asyncio.run(main())
    finally:
        bar.close()
    return {"sessions": sessions, "wall_s": time.perf_counter() - started,
            "load_average": {"before_1m": load[0], "peak_1m": peak[0], "after": list(os.getloadavg())}}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _latency(values: list[float]) -> dict[str, float]:
    ms = [1000 * v for v in values]
    return {"p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
            "p99": round(percentile(ms, 99), 1), "max": round(max(ms, default=0.0), 1), "n": len(ms)}


def build_report(config: LoadConfig, result: dict[str, Any], checks: dict[str, Any], database: str, url: str,
                 kept: Path | None) -> dict[str, Any]:
    sessions: list[SessionRecord] = result["sessions"]
    turns = [t for rec in sessions for t in rec.turns]
    ok = [t for t in turns if not t.error]
    by_route: dict[str, list[float]] = {}
    for t in ok:
        by_route.setdefault(t.route, []).append(t.latency_s)
    errors = Counter(t.error for t in turns if t.error)
    per_worker = Counter(t.worker for t in ok if t.worker)
    hopping = sum(1 for rec in sessions if len({t.worker for t in rec.turns if t.worker}) > 1)
    unexpected = [u for rec in sessions for u in rec.unexpected]
    planned_returns = sum(1 for rec in sessions if "return" in rec.plan)
    wall = result["wall_s"]
    report = {
        "config": {**asdict(config), "database": database, "url": url,
                   "models": REAL_MODELS if config.real_models else FAKE_MODELS,
                   "rate_limit": "target's own setting; 429 answers count as errors" if config.url else
                   "off for the started server (SHOPDESK_RATE_LIMIT_PER_MINUTE=0): every session comes from 127.0.0.1",
                   "cpus": os.cpu_count(), "kept_work_dir": str(kept) if kept else None},
        "turns": {"planned": config.sessions * config.turns, "sent": len(turns), "ok": len(ok),
                  "errors": sum(errors.values()), "error_kinds": dict(errors),
                  "not_sent": config.sessions * config.turns - len(turns),
                  "sessions_stopped": dict(Counter(rec.stopped for rec in sessions if rec.stopped))},
        "unexpected_replies": len(unexpected), "unexpected_examples": unexpected[:10],
        "latency_ms": _latency([t.latency_s for t in ok]),
        "latency_ms_by_route": {route: _latency(v) for route, v in sorted(by_route.items())},
        "throughput_turns_per_s": round(len(ok) / wall, 2) if wall > 0 else 0.0, "wall_s": round(wall, 2),
        "load_average": {k: (round(v, 2) if isinstance(v, float) else [round(x, 2) for x in v])
                         for k, v in result["load_average"].items()},
        "workers": {"distinct": len(per_worker), "turns_per_worker": dict(per_worker),
                    "sessions_on_several_workers": hopping, "sessions": len(sessions)},
        "returns": {"planned": planned_returns, "completed": sum(rec.return_done for rec in sessions),
                    "double_yes_sessions": sum(1 for rec in sessions if rec.double_yes and "return" in rec.plan),
                    "double_yes_outcomes": dict(Counter(rec.double_outcome for rec in sessions if rec.double_outcome))},
        "verification": checks,
    }
    report["passed"] = passed(report)
    return report


def passed(report: dict[str, Any]) -> bool:
    """0 errors, every planned turn sent, every planned return confirmed, nothing lost or duplicated."""
    v, t, r = report["verification"], report["turns"], report["returns"]
    return (t["errors"] == 0 and t["not_sent"] == 0 and r["completed"] == r["planned"]
            and all(v[k] == 0 for k in ("returns_missing", "returns_duplicated", "returns_unannounced",
                                         "returns_wrong_order", "sessions_announcing_two_rmas", "returns_bad_items",
                                         "returns_bad_audit", "tickets_missing", "tickets_duplicated", "turns_lost",
                                         "sessions_turns_mismatch")))


def summary(report: dict[str, Any]) -> str:
    c, t, lat, v, w = (report["config"], report["turns"], report["latency_ms"], report["verification"],
                       report["workers"])
    lines = [
        f"load test: {c['sessions']} sessions x {c['turns']} turns against {c['url']} "
        f"({c['workers']} worker(s), {c['database']}); models: {c['models']}",
        f"  rate limit: {c['rate_limit']}",
        f"  turns: {t['sent']}/{t['planned']} sent, {t['ok']} ok, {t['errors']} errors"
        f"{' ' + json.dumps(t['error_kinds']) if t['errors'] else ''}, "
        f"{report['unexpected_replies']} unexpected replies",
        f"  latency ms: p50 {lat['p50']}, p95 {lat['p95']}, p99 {lat['p99']}, max {lat['max']}; "
        f"throughput {report['throughput_turns_per_s']} turns/s over {report['wall_s']} s",
        f"  load average (1 min): before {report['load_average']['before_1m']}, peak "
        f"{report['load_average']['peak_1m']} on {c['cpus']} CPUs",
        f"  workers seen: {w['distinct']}; sessions served by several workers: {w['sessions_on_several_workers']}"
        f"/{w['sessions']}",
        f"  returns: {report['returns']['completed']}/{report['returns']['planned']} confirmed "
        f"({report['returns']['double_yes_sessions']} double-clicked yes, replies: "
        f"{json.dumps(report['returns']['double_yes_outcomes'])}); in the database "
        f"{v['returns_in_database']}, missing {v['returns_missing']}, duplicated {v['returns_duplicated']}, "
        f"unannounced {v['returns_unannounced']}, audit rows off {v['returns_bad_audit']}",
        f"  handoff tickets: {v['tickets_confirmed']} confirmed, {v['tickets_in_database']} in the database; "
        f"turns stored {v['turns_stored']}, lost {v['turns_lost']}, sessions with a turn-count mismatch "
        f"{v['sessions_turns_mismatch']}",
        f"  {'PASSED' if report['passed'] else 'FAILED'}: 0 errors, 0 lost turns, every confirmed return exactly once",
    ]
    return "\n".join(lines)
