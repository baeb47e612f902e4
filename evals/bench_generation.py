"""`shopdesk bench`: how fast and how good reply generation is, measured in one run, as JSON.

    shopdesk bench [--json FILE] [--quick]          (also: python -m evals.bench_generation)

1. memory bandwidth (numpy copy) and so the decode limit of each setup's weights;
2. per decoding setup (transformers ``generate`` in bfloat16, the eager default before issue 7, and
   the lean decoder in float32, bfloat16 and int8): model load time, prefill and decode speed for a
   400-token prompt and a 60-token reply, the share of the bandwidth limit, the prefix cache's effect,
   and for the default setup 1 thread against one per core; llama.cpp on the same job when
   ``llama-cpp-python`` is installed (in a child process, on every core; ``vs_llama_cpp_turn_ratio``
   compares our default setup at the same thread count, ``default_threads_ratio`` at the settings');
3. whole turns through the real Assistant (evals/bench_turns.py): latency p50/p95, time to the
   first streamed token, guard acceptance overall and per route; without ``--quick`` also the same
   conversations with the before setup and, when the default decodes with the native step, with
   PyTorch's int8 step (the same weights: does the native step change guard acceptance?);
4. turns per second with 1, 4 and 16 concurrent sessions (threads in one process sharing one model).

Top-level keys of the JSON: ``decode_roofline_ratio``, ``turn_latency_p50_s``, ``turn_latency_p95_s``,
``first_token_s``, ``guard_acceptance``, ``vs_llama_cpp_turn_ratio`` (null without llama.cpp), then
``targets`` (each with its value, the bound and pass/fail) and ``detail``. No number is asserted:
on a shared machine they move with the load, which the report records before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from app.config import Settings, load_settings
from app.generator import LocalGenerator, resolve_dtype
from evals.bench_decode import (
    BEFORE,
    PYTORCH_INT8,
    QUICK_SETUPS,
    SETUPS,
    Setup,
    llama_cpp_reply_s,
    measure_setup,
    memory_bandwidth_gbs,
)
from evals.bench_turns import TurnBench, conversations, summarise

TOP_LEVEL = ("decode_roofline_ratio", "turn_latency_p50_s", "turn_latency_p95_s", "first_token_s",
             "guard_acceptance", "vs_llama_cpp_turn_ratio")
# issue 7's targets on 2 CPU cores: (comparison, bound)
TARGETS = {"decode_roofline_ratio": (">=", 0.30), "vs_llama_cpp_turn_ratio": ("<=", 0.6),
           "turn_latency_p50_s": ("<=", 1.0), "turn_latency_p95_s": ("<=", 2.5), "first_token_s": ("<=", 0.4),
           "guard_acceptance": (">=", 0.80)}
SESSIONS = (1, 4, 16)


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=not enabled)


def _generator(settings: Settings, setup: Setup) -> LocalGenerator:
    return LocalGenerator(settings.generator_model, settings.model_cache_dir, "cpu", setup.dtype, settings.threads,
                          lean=setup.lean, queue_max=settings.generation_queue_max,
                          batch=settings.generation_batch_max, native=setup.native)


def run_bench(settings: Settings, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    repeats = 1 if quick else 3
    dtype = resolve_dtype(settings.dtype, "cpu")
    native = settings.native_decode and dtype == "int8"
    default = Setup(f"lean-{dtype}{'-native' if native else ''}", dtype, lean=True, native=native)
    setups = list(QUICK_SETUPS if quick else SETUPS)
    if default not in setups:
        setups.append(default)

    bandwidth = memory_bandwidth_gbs(256 if quick else 512, 3 if quick else 5)
    decode: dict[str, Any] = {}
    with _bar(len(setups) * repeats, "decode setups", progress) as bar:
        for setup in setups:
            decode[setup.label] = measure_setup(setup, settings.model_cache_dir, bandwidth["gbs"], repeats,
                                                settings.threads, threads=setup == default,
                                                tick=lambda: bar.update(1))
    llama = llama_cpp_reply_s(repeats)
    if llama.get("available"):  # the same job for both on the same cores: our default setup at llama.cpp's threads
        same = decode[default.label] if llama["threads"] == settings.threads else measure_setup(
            default, settings.model_cache_dir, bandwidth["gbs"], repeats, llama["threads"])
        llama["ours_same_threads_reply_400_60_s"] = same["reply_400_60_s"]

    convs = conversations(quick)
    passes = [("default", default)] + ([] if quick else [("before", BEFORE)])
    if default.native and not quick:  # the same turns through PyTorch's int8 step: does the native one hurt the guard?
        passes.append(("pytorch_step", PYTORCH_INT8))
    turns: dict[str, Any] = {"conversations": len(convs), "turns_per_conversation": None}
    concurrency: dict[str, Any] = {"mode": "threads in one process sharing one model, as the API server's "
                                           "worker threads; generations take turns on the model"}
    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-") as tmp:
        gen = _generator(settings, default)
        bench = TurnBench(settings, Path(tmp), gen)
        for name, setup in passes:
            with _bar(len(convs), f"conversations ({setup.label})", progress) as bar:
                samples = bench.sequential(gen if setup == default else _generator(settings, setup), convs,
                                           tick=lambda: bar.update(1))
            turns[name] = {"setup": setup.label, **summarise(samples)}
        turns["turns_per_conversation"] = round(turns["default"]["turns"] / max(1, len(convs)), 2)
        for sessions in SESSIONS:
            total = max(sessions, 2) if quick else max(16, 2 * sessions)
            with _bar(total, f"{sessions} concurrent sessions", progress) as bar:
                concurrency[str(sessions)] = bench.concurrent(gen, convs, sessions, total, tick=lambda: bar.update(1))
        bench.engine.dispose()

    ours, theirs = decode[default.label], llama.get("reply_400_60_s")
    if theirs:
        llama["default_threads_ratio"] = round(ours["reply_400_60_s"] / theirs, 3)
    summary = turns["default"]
    values = {
        "decode_roofline_ratio": ours["roofline_ratio"],
        "turn_latency_p50_s": summary["latency_p50_s"],
        "turn_latency_p95_s": summary["latency_p95_s"],
        "first_token_s": summary["first_token_p50_s"],
        "guard_acceptance": summary["guard_acceptance"],
        "vs_llama_cpp_turn_ratio": round(llama["ours_same_threads_reply_400_60_s"] / theirs, 3) if theirs else None,
    }
    import torch

    detail = {
        "machine": {"cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "settings_threads": settings.threads, "quick": quick,
                    "at": datetime.now().isoformat(timespec="seconds"),
                    "seconds": round(time.perf_counter() - started, 1)},
        "memory_bandwidth": bandwidth, "default_setup": default.label, "before_setup": BEFORE.label,
        "decode": decode, "llama_cpp": llama,
        "generator_first_token_s": ours.get("prefix_cache", {}).get("first_token_warm_s"),
        "first_token_note": "first_token_s is when the shopper's first streamed token leaves the Assistant (p50); "
                            "generator_first_token_s is when the model has its first token of an opener prompt",
        "turns": turns, "concurrency": concurrency,
        "generation_time_budget_s": settings.generation_time_budget_s,
    }
    return {**values, "targets": targets(values), "detail": detail}


def targets(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = values.get(key)
        ok = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out[key] = {"value": value, "target": f"{op} {bound}", "pass": ok}
    return out


def print_report(report: dict[str, Any], out: TextIO) -> None:
    d = report["detail"]
    out.write(f"memory bandwidth {d['memory_bandwidth']['gbs']} GB/s; torch threads {d['machine']['torch_threads']}; "
              f"load average before "
              f"{d['machine']['load_average_before']} after {d['machine']['load_average_after']}\n")
    out.write(f"{'setup':<20}{'load s':>8}{'weights MB':>12}{'prefill s':>11}{'decode tok/s':>14}"
              f"{'of limit':>10}{'400+60 s':>10}\n")
    for label, r in d["decode"].items():
        out.write(f"{label:<20}{r['load_s']:>8}{r['weight_mb']:>12}{r['prefill_s']:>11}{r['decode_tok_s']:>14}"
                  f"{r['roofline_ratio']:>10.0%}{r['reply_400_60_s']:>10}\n")
    for name in ("default", "pytorch_step", "before"):
        t = d["turns"].get(name)
        if t:
            routes = ", ".join(f"{k} {v['accepted']}/{v['n']}" for k, v in t["guard_by_route"].items())
            out.write(f"turns ({t['setup']}): p50 {t['latency_p50_s']}s p95 {t['latency_p95_s']}s, first token p50 "
                      f"{t['first_token_p50_s']}s, guard acceptance {t['guard_acceptance']} ({routes})\n")
    out.write("concurrent sessions: " + ", ".join(
        f"{k}: {v['turns_per_s']} turns/s (p95 {v['latency_p95_s']}s; of {v['model_turns']} model turns "
        f"{v['model_turns_timed_out']} timed out, {v.get('model_turns_busy', 0)} found the queue full)"
        for k, v in d["concurrency"].items()
        if k != "mode") + "\n")
    for key, t in report["targets"].items():
        verdict = "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        out.write(f"  {verdict:<5}{key} = {t['value']} (target {t['target']})\n")
    out.flush()


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_generation", description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--quick", action="store_true", help="fewer setups, repetitions and conversations")
    args = parser.parse_args(argv)
    report = run_bench(load_settings(), quick=args.quick)
    print_report(report, sys.stdout)
    if args.json:
        write_json(report, Path(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
