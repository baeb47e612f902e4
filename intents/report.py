"""The training report (``shopdesk train --report DIR``) and the speed measurements the benchmark shares.

Writes ``report.json`` (everything), ``report.md`` (per-route precision/recall/F1 tables, gates,
latency) and one confusion-matrix PNG per evaluated split (cross-validation, held-out test split).
Latency is wall-clock per single-message ``classify`` call after a warm-up; speed is measured, never
asserted in tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intents.classifier import IntentClassifier

SPLIT_TITLES = {"cross_validation": "cross-validation on the training data (out-of-fold)",
                "heldout": "held-out test split (never trained on)"}


def single_latency(classifier: IntentClassifier, texts: Sequence[str], n: int = 200) -> dict[str, float]:
    """p50/p95/mean milliseconds of ``classify(text)`` over ``n`` messages (cycled), after 5 warm-ups.

    Wall-clock is what a shopper waits. CPU time of this process is reported beside it: on a shared,
    busy machine wall-clock grows with other processes' load while CPU time does not.
    """
    if not texts:
        raise ValueError("latency needs at least one message")
    for t in texts[:5]:
        classifier.classify(t)
    wall, cpu = [], []
    for i in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        classifier.classify(texts[i % len(texts)])
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return {"n": n, "p50_ms": float(np.percentile(wall, 50)), "p95_ms": float(np.percentile(wall, 95)),
            "mean_ms": float(np.mean(wall)), "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p95_ms": float(np.percentile(cpu, 95))}


def batch_throughput(classifier: IntentClassifier, texts: Sequence[str], batch_size: int = 64,
                     repeats: int = 3) -> dict[str, float]:
    """Messages per second of ``classify_batch`` in batches of ``batch_size``; the median of ``repeats``."""
    classifier.classify_batch(list(texts[:batch_size]))
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            classifier.classify_batch(list(texts[i:i + batch_size]))
        rates.append(len(texts) / (time.perf_counter() - started))
    return {"n": len(texts), "batch_size": batch_size, "msgs_per_s": float(np.median(rates))}


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> Path:
    import matplotlib  # heavy; only when a report is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=float)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted route")
    ax.set_ylabel("true route")
    ax.set_title(title, fontsize=10)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown(report: dict[str, Any]) -> str:
    meta = report["model"]
    lines = [f"# Intent model report\n\nkind `{meta.get('kind')}`, base model `{meta.get('base_model')}`, "
             f"{meta.get('n_examples')} training examples, data hash `{meta.get('data_hash')}`, "
             f"temperature {meta.get('temperature')}\n",
             f"Gates (calibrated on cross-validation): confidence >= {meta['thresholds']['confidence_min']}, "
             f"top-2 margin >= {meta['thresholds']['margin_min']}\n"]
    for split, metrics in meta.get("metrics", {}).items():
        gate = metrics["gate"]
        lines += [f"## {SPLIT_TITLES.get(split, split)}\n",
                  f"{metrics['n']} messages: route macro-F1 **{metrics['macro_f1']:.3f}**, accuracy "
                  f"{metrics['accuracy']:.3f}; out-of-scope recall **{gate['oos_recall']:.3f}**, in-scope "
                  f"rejected **{gate['in_scope_rejected']:.3f}**\n",
                  "| route | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for r, v in metrics["per_route"].items()]
        lines.append(f"\n![confusion matrix](confusion_{split}.png)\n")
    lat = report["latency"]
    lines.append(f"## Speed\n\nsingle message: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms "
                 f"(n={lat['n']})\n")
    return "\n".join(lines)


def write_report(directory: Path, meta: dict[str, Any], classifier: IntentClassifier,
                 latency_texts: Sequence[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write report.json, report.md and the confusion PNGs for a trained model's ``meta``."""
    directory.mkdir(parents=True, exist_ok=True)
    report = {"model": meta, "latency": single_latency(classifier, latency_texts), **(extra or {})}
    for split, metrics in meta.get("metrics", {}).items():
        confusion = metrics["confusion"]
        plot_confusion(confusion["matrix"], confusion["labels"], directory / f"confusion_{split}.png",
                       f"{SPLIT_TITLES.get(split, split)}: macro-F1 {metrics['macro_f1']:.3f}")
    (directory / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    (directory / "report.md").write_text(markdown(report), encoding="utf-8")
    return report
