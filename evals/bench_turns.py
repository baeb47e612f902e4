"""Whole turns through the real Assistant and models: latency, first streamed token, guard acceptance
per route, and turns per second with concurrent sessions.

Part of `shopdesk bench` (evals/bench_generation.py). The conversations are the regression suite's
transcripts that run against the plain demo shop (no fixtures of their own; the adversarial set is
left out: it is not everyday traffic), replayed against one shared demo database with the clock
frozen at the suite's default ``now``. Every replay is a new session with its own client address, so
lockouts never carry over. The generation time budget is the app's (``generation_time_budget_s``),
not the eval's long one: latency here is what a shopper would wait.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.clock import FrozenClock
from app.config import Settings
from app.factory import Models, build_assistant, classifier, database, embedder, faq_index
from app.fixtures import load_fixtures
from app.generator import Generator
from app.orchestrator import Assistant
from app.schema import Message, Reply, Token
from evals.metrics import percentile, rate
from evals.runner import DEFAULT_NOW, NOT_JUDGED
from evals.transcript import EVAL_DEMO_SIZE, Transcript, load_paths

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
QUICK_PER_FOLDER = 1


@dataclass(frozen=True)
class TurnSample:
    route: str
    kind: str
    model_used: bool  # the model wrote a candidate (sent, or refused by the guard or the clock)
    judged: bool  # the guard judged it (not a timeout or a model error)
    accepted: bool
    reasons: tuple[str, ...]
    latency_s: float
    first_token_s: float


def conversations(quick: bool = False, root: Path = TRANSCRIPTS) -> list[Transcript]:
    """The fixed set: plain-demo-shop transcripts at the default clock; ``quick``: one per folder."""
    plain = [t for t in load_paths([root], ()) if t.seed != "empty" and "adversarial" not in t.tags
             and not any(t.fixtures.get(k) for k in t.fixtures) and t.now in (None, DEFAULT_NOW)]
    if not quick:
        return plain
    per_folder: dict[str, list[Transcript]] = defaultdict(list)
    for t in plain:
        per_folder[Path(t.source).parent.name].append(t)
    return [t for group in per_folder.values() for t in group[:QUICK_PER_FOLDER]]


class TurnBench:
    """The real models and one demo shop database in ``workdir``; Assistants built per generator."""

    def __init__(self, settings: Settings, workdir: Path, generator: Generator) -> None:
        from knowledge_base.loader import DOCS_DIR, load_chunks

        self.settings = settings.replace(
            data_dir=workdir, database_url="", chroma_path=str(workdir / "chroma"), chroma_host="",
            intent_model_dir=str(settings.resolved_intent_model_dir),
            model_cache_dir_override=str(settings.model_cache_dir.resolve()))
        emb = embedder(self.settings)
        index = faq_index(self.settings, emb)
        index.sync(load_chunks(DOCS_DIR), emb)
        self.models = Models(emb, classifier(self.settings, emb), generator, index)
        self.models.classifier.classify("hello")
        self.engine = database(self.settings)
        from app.seed import demo_fixtures

        load_fixtures(self.engine, demo_fixtures(now=DEFAULT_NOW, **EVAL_DEMO_SIZE))
        self._sessions = itertools.count()

    def assistant(self, generator: Generator) -> Assistant:
        generator.warm_up()
        models = dataclasses.replace(self.models, generator=generator)
        return build_assistant(self.settings, models, clock=FrozenClock(DEFAULT_NOW), engine=self.engine)

    def replay(self, assistant: Assistant, t: Transcript) -> list[TurnSample]:
        n = next(self._sessions)
        samples = []
        for turn in t.turns:
            started = time.perf_counter()
            first = 0.0
            reply: Reply | None = None
            for event in assistant.stream(Message(f"bench-{n}", turn.user, channel="eval", client_id=f"bench-{n}")):
                if isinstance(event, Token) and not first:
                    first = time.perf_counter() - started
                elif isinstance(event, Reply):
                    reply = event
            assert reply is not None
            latency = time.perf_counter() - started
            judged = not any(r in NOT_JUDGED for r in reply.guard.reasons)
            samples.append(TurnSample(reply.route, reply.facts_kind,
                                      reply.generated_by != "template" or not reply.guard.accepted, judged,
                                      reply.guard.accepted, reply.guard.reasons, latency, first or latency))
        return samples

    def sequential(self, generator: Generator, convs: list[Transcript],
                   tick: Callable[[], None] = lambda: None) -> list[TurnSample]:
        assistant = self.assistant(generator)
        samples: list[TurnSample] = []
        for t in convs:
            samples += self.replay(assistant, t)
            tick()
        return samples

    def concurrent(self, generator: Generator, convs: list[Transcript], sessions: int, total: int,
                   tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """``sessions`` threads (as the API server's worker threads) replay ``total`` conversations."""
        assistant = self.assistant(generator)
        queue = iter(itertools.islice(itertools.cycle(convs), total))
        lock = threading.Lock()
        samples: list[TurnSample] = []
        errors: list[str] = []

        def worker() -> None:
            while True:
                with lock:
                    t = next(queue, None)
                if t is None:
                    return
                try:
                    got = self.replay(assistant, t)
                except Exception as exc:  # counted and reported; the other sessions go on
                    errors.append(f"{t.id}: {exc!r}")
                    continue
                with lock:
                    samples.extend(got)
                tick()

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, name=f"bench-session-{i}") for i in range(sessions)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - started
        model = [s for s in samples if s.model_used]
        return {"sessions": sessions, "conversations": total, "turns": len(samples), "seconds": round(seconds, 2),
                "turns_per_s": round(len(samples) / seconds, 2) if seconds else None,
                "latency_p50_s": round(percentile([s.latency_s for s in samples], 0.5), 3),
                "latency_p95_s": round(percentile([s.latency_s for s in samples], 0.95), 3),
                "model_turns_timed_out": sum("timeout" in s.reasons for s in model), "model_turns": len(model),
                "model_turns_busy": sum("busy" in s.reasons for s in model),  # refused by the bounded queue
                "errors": errors[:5]}


def summarise(samples: list[TurnSample]) -> dict[str, Any]:
    """Latency and first-token percentiles over all turns; guard acceptance overall and per route."""
    judged = [s for s in samples if s.model_used and s.judged]
    by_route: dict[str, list[TurnSample]] = defaultdict(list)
    for s in judged:
        by_route[s.route].append(s)
    reasons = Counter(r.split(":")[0] for s in judged if not s.accepted for r in s.reasons)
    latencies = [s.latency_s for s in samples]
    firsts = [s.first_token_s for s in samples]
    return {
        "turns": len(samples), "model_turns": sum(s.model_used for s in samples),
        "not_judged": sum(s.model_used and not s.judged for s in samples),
        "latency_p50_s": round(percentile(latencies, 0.5), 3), "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "first_token_p50_s": round(percentile(firsts, 0.5), 3), "first_token_p95_s": round(percentile(firsts, 0.95), 3),
        "model_turn_latency_p50_s": round(percentile([s.latency_s for s in samples if s.model_used], 0.5), 3),
        "guard_acceptance": rate(sum(s.accepted for s in judged), len(judged)),
        "guard_by_route": {route: {"n": len(group), "accepted": sum(s.accepted for s in group),
                                   "rate": rate(sum(s.accepted for s in group), len(group))}
                           for route, group in sorted(by_route.items())},
        "rejection_reasons": dict(reasons.most_common()),
    }
