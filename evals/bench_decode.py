"""The model alone: memory bandwidth, load time, prefill and decode speed per decoding setup.

Part of `shopdesk bench` (evals/bench_generation.py). Every timing is the best of a few repetitions,
so that another job briefly using the shared cores shows up less; the report keeps the load average.
The decode limit set by memory bandwidth is bandwidth / bytes of weights read per token: a decode
speed is reported as a share of it (``roofline_ratio``).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.generator import LocalGenerator, bundled_gguf
from app.prompts import build_messages
from app.schema import Facts

PROMPT_TOKENS = 400  # the comparison: a 400-token prompt and a 60-token reply
REPLY_TOKENS = 60


@dataclass(frozen=True)
class Setup:
    """One way of decoding: ``lean`` (app.decoder) or transformers' ``generate``, a dtype, and for int8
    whether decode steps run in one native call (app.native) or as PyTorch operations."""

    label: str
    dtype: str
    lean: bool
    native: bool = False


BEFORE = Setup("generate-bfloat16", "bfloat16", lean=False)  # the eager default before issue 7
PYTORCH_INT8 = Setup("lean-int8", "int8", True)  # int8 decode steps as PyTorch operations
NATIVE = Setup("lean-int8-native", "int8", True, native=True)
SETUPS = (BEFORE, Setup("lean-float32", "float32", True), Setup("lean-bfloat16", "bfloat16", True), PYTORCH_INT8,
          NATIVE)
QUICK_SETUPS = (BEFORE, PYTORCH_INT8, NATIVE)


def memory_bandwidth_gbs(size_mb: int = 512, repeats: int = 5) -> dict[str, float]:
    """Copy bandwidth (bytes read + written per second) and read bandwidth (a sum), one thread and one
    per core; best of ``repeats``. ``gbs``, the highest, sets the decode limit (the stricter choice)."""
    import numpy as np

    src = np.ones(size_mb * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    out: dict[str, float] = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        parts = list(zip(np.array_split(src, threads), np.array_split(dst, threads), strict=True))
        best = 0.0
        with ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL while copying
            for _ in range(repeats):
                started = time.perf_counter()
                list(pool.map(lambda p: np.copyto(p[1], p[0]), parts))
                best = max(best, 2 * src.nbytes / (time.perf_counter() - started) / 1e9)
        out[f"copy_{threads}_threads_gbs"] = round(best, 2)
        best = 0.0
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(repeats):
                started = time.perf_counter()
                list(pool.map(lambda p: p[0].sum(), parts))
                best = max(best, src.nbytes / (time.perf_counter() - started) / 1e9)
        out[f"read_{threads}_threads_gbs"] = round(best, 2)
    out["gbs"] = max(out.values())
    return out


def weight_bytes(gen: LocalGenerator) -> int:
    if gen.decoder is not None:
        return int(gen.decoder.weight_bytes)
    seen: set[int] = set()
    total = 0
    for p in gen.model.parameters():  # tied embedding and output matrix counted once: read once per token
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


def long_prompt_ids(gen: LocalGenerator, tokens: int = PROMPT_TOKENS, salt: int = 0) -> list[int]:
    """A chat prompt of about ``tokens`` tokens of help-centre text (``salt`` shifts the text)."""
    from knowledge_base.loader import DOCS_DIR

    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(Path(DOCS_DIR).glob("*.md")))
    body = gen.tokenizer(text, add_special_tokens=False)["input_ids"][salt * 50:]
    system = {"role": "system", "content": "You answer shoppers' questions from the help centre."}
    overhead = len(gen.encode([system, {"role": "user", "content": ""}])[0])
    content = gen.tokenizer.decode(body[:max(1, tokens - overhead)])
    return gen.encode([system, {"role": "user", "content": content}])[0]


def time_decode(gen: LocalGenerator, ids: list[int], new_tokens: int = REPLY_TOKENS) -> tuple[float, float]:
    """(seconds to the first new token, seconds for all ``new_tokens``), never stopping early."""
    started = time.perf_counter()
    first = 0.0
    if gen.decoder is not None:
        gen.decoder.forget()
        for i, _ in enumerate(gen.decoder.generate(ids, new_tokens, lambda: False)):
            if i == 0:
                first = time.perf_counter() - started
        return first, time.perf_counter() - started
    import torch
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        calls = 0

        def put(self, value: Any) -> None:
            nonlocal first
            self.calls += 1
            if self.calls == 2:  # the first call carries the prompt
                first = time.perf_counter() - started

        def end(self) -> None:
            pass

    with torch.inference_mode():
        gen.model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, streamer=FirstToken(), pad_token_id=gen.tokenizer.eos_token_id)
    return first, time.perf_counter() - started


def measure_setup(setup: Setup, cache_dir: Path, bandwidth_gbs: float, repeats: int, torch_threads: int = 0,
                  threads: bool = False, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Load time, prefill and decode speed (and the prefix cache's effect; with ``threads``, 1 thread
    against one per core) of one setup; the model is released afterwards."""
    gen = LocalGenerator("bundled", cache_dir, device="cpu", dtype=setup.dtype, threads=torch_threads, lean=setup.lean,
                         native=setup.native)
    gen.warm_up()
    import torch

    native = gen.native_step is not None
    if setup.native and not native:
        raise RuntimeError(f"{setup.label}: the native decoding step is not available here (see the log)")
    result: dict[str, Any] = {"dtype": setup.dtype, "decoder": "lean" if setup.lean else "generate",
                              "step": "native" if native else "pytorch",
                              "torch_threads": torch.get_num_threads(),
                              "load_s": round(gen.load_seconds, 3), "weight_mb": round(weight_bytes(gen) / 1e6, 1)}
    time_decode(gen, long_prompt_ids(gen, 64), 4)  # warm-up: first calls allocate and pick kernels
    best_prefill, best_total = float("inf"), float("inf")
    for rep in range(repeats):
        first, total = time_decode(gen, long_prompt_ids(gen, salt=rep))
        best_prefill, best_total = min(best_prefill, first), min(best_total, total)
        tick()
    tok_s = (REPLY_TOKENS - 1) / max(best_total - best_prefill, 1e-9)
    limit = bandwidth_gbs * 1e9 / weight_bytes(gen)
    result.update(prompt_tokens=len(long_prompt_ids(gen)), prefill_s=round(best_prefill, 3),
                  prefill_tok_s=round(len(long_prompt_ids(gen)) / best_prefill, 1),
                  decode_tok_s=round(tok_s, 1), bandwidth_limit_tok_s=round(limit, 1),
                  roofline_ratio=round(tok_s / limit, 3), reply_400_60_s=round(best_total, 3))
    if setup.lean:
        result["prefix_cache"] = prefix_cache_effect(gen)
    if threads:
        result["threads"] = thread_counts(gen, repeats)
    del gen
    gc.collect()
    return result


def prefix_cache_effect(gen: LocalGenerator) -> dict[str, Any]:
    """Time to the first token of a real opener prompt with the prompt's fixed prefix cached or not."""
    facts = Facts(kind="order_status", route="order_status", data={"status_text": "in transit"})
    messages = build_messages(facts, "where is my order SD-10002? ada.park@example.com", (), "Fern & Field")
    ids, prefix_len = gen.encode(messages)
    timings = {}
    for label in ("cold", "warm"):
        best = float("inf")
        for _ in range(3):
            if label == "cold":  # else the fixed prefix is cached, as after the first turn of this kind
                gen.decoder.forget()
            started = time.perf_counter()
            next(iter(gen.decoder.generate(ids, 1, lambda: False, prefix_len=prefix_len)))
            best = min(best, time.perf_counter() - started)
        timings[f"first_token_{label}_s"] = round(best, 4)
    return {"prompt_tokens": len(ids), "prefix_tokens": prefix_len, **timings,
            "kept": timings["first_token_warm_s"] < timings["first_token_cold_s"]}


def thread_counts(gen: LocalGenerator, repeats: int) -> dict[str, Any]:
    """Prefill and decode speed at 1 thread and at one per core (torch's default)."""
    import torch

    before = torch.get_num_threads()
    out: dict[str, Any] = {}
    try:
        for threads in sorted({1, os.cpu_count() or 1}):
            _set_threads(gen, threads)
            time_decode(gen, long_prompt_ids(gen, 64), 4)
            runs = [time_decode(gen, long_prompt_ids(gen, 100, salt=r), 40) for r in range(repeats)]
            decode_s = min(total - first for first, total in runs)
            out[f"{threads}_threads"] = {"prefill_100_s": round(min(first for first, _ in runs), 3),
                                         "decode_tok_s": round(39 / max(decode_s, 1e-9), 1)}
    finally:
        _set_threads(gen, before)
    return out


def _set_threads(gen: LocalGenerator, threads: int) -> None:
    """Torch's threads and, when decode steps run natively, the native step's (it keeps its own count)."""
    import torch

    torch.set_num_threads(threads)
    if gen.native_step is not None:
        gen.native_step.set_threads(threads)


def llama_cpp_reply_s(repeats: int, timeout_s: float = 600.0) -> dict[str, Any]:
    """The same 400 + 60 token job in llama.cpp (llama-cpp-python) on every core, when it is installed.

    Run in a child process (``evals.bench_llama_cpp``): a llama.cpp build that crashes on this CPU
    (a native build segfaulted here) must cost the bench this comparison only, not the whole report."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("llama_cpp") is None:
        return {"available": False, "why": "llama-cpp-python is not installed (pip install llama-cpp-python "
                "compiles llama.cpp, ~7 minutes here); the ratio is null"}
    cmd = [sys.executable, "-m", "evals.bench_llama_cpp", str(bundled_gguf()), str(PROMPT_TOKENS), str(REPLY_TOKENS),
           str(repeats), str(os.cpu_count() or 1)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"available": False, "why": f"llama.cpp did not finish the job within {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"available": False, "why": f"llama.cpp is installed but failed (exit code {done.returncode}; "
                f"{(done.stderr.strip().splitlines() or ['no output'])[-1][:200]})"}
    return {"available": True, **json.loads(lines[-1])}
