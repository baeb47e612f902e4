"""Does `shopdesk eval --jobs N` help? Wall-clock of the same transcripts with 1 and N worker processes.

    python -m evals.bench_jobs [PATH...] [--tags T...] [--jobs 2] [--json FILE]

Runs `shopdesk eval` as a fresh process per configuration (so each pays its own model load, as a user
would): one process with one torch thread per core (SHOPDESK_THREADS=0), one with 1 thread, and N workers with
cpu_count/N threads each. Prints seconds, transcripts per minute and the load average before each run
(the numbers mean little on a machine other jobs are using), and writes a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = (("1 process, one thread per core", 1, "0"), ("1 process, 1 thread", 1, "1"))


def run(paths: list[str], tags: list[str], jobs: int, threads: str) -> dict[str, float | int | str]:
    env = {**os.environ, **({"SHOPDESK_THREADS": threads} if threads else {})}
    out = Path(f"/tmp/shopdesk-bench-jobs-{os.getpid()}-{jobs}-{threads or 'default'}.json")
    cmd = [sys.executable, "-m", "app.cli", "eval", *paths, "--jobs", str(jobs), "--json", str(out)]
    if tags:
        cmd += ["--tags", *tags]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = json.loads(out.read_text()) if out.is_file() else {}
    out.unlink(missing_ok=True)
    return {"seconds": round(seconds, 1), "transcripts": summary.get("total", 0), "passed": summary.get("passed", 0),
            "exit_code": proc.returncode, "load_before": round(load, 2),
            "per_minute": round(60 * summary.get("total", 0) / seconds, 2) if seconds else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_jobs", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=["evals/transcripts"])
    parser.add_argument("--tags", nargs="+", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", default="test-artifacts/bench_eval_jobs.json")
    args = parser.parse_args(argv)
    configs = [*CONFIGS, (f"{args.jobs} worker processes", args.jobs, "")]
    report = {"cpu_count": os.cpu_count(), "paths": args.paths, "tags": args.tags, "runs": {}}
    for label, jobs, threads in configs:
        result = run(args.paths, args.tags, jobs, threads)
        report["runs"][label] = result
        print(f"{label:<36} {result['seconds']:>7.1f} s  {result['per_minute']:>6.2f} transcripts/min  "
              f"({result['passed']}/{result['transcripts']} passed, load before {result['load_before']})", flush=True)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
