"""Continuous batching for the lean decoder: concurrent turns decode together, one token each per step.

Decoding a small model on a CPU is bound by reading its weights; a step for four sequences reads them
once, so it costs little more than a step for one (`shopdesk bench`: int8, 1 thread, 53 tokens/s for
one sequence, 150 tokens/s in total for four). One thread owns the decoder: it takes waiting requests
into free cache rows (their prompts are prefilled one at a time, the fixed prefix from the prefix
cache), then steps every running sequence together, and hands each its tokens through its own queue.
A request that is cancelled (the turn's budget ran out, the client left) leaves at the next step.

Callers never touch the decoder: ``LocalGenerator.stream`` submits and reads its queue, so a caller
that stops reading costs nothing but its cache row until the next step.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.decoder import LlamaDecoder, pick
from app.errors import GeneratorBusy

log = logging.getLogger(__name__)

END = None  # put on a request's queue after its last token


@dataclass(eq=False)
class Request:
    ids: list[int]
    prefix_len: int
    max_new_tokens: int
    first_ids: tuple[int, ...] = ()
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)  # token ids, then END or an exception
    cancelled: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    position: int = 0
    seen: list[int] = field(default_factory=list)
    logits: Any = None

    def cancel(self) -> None:
        self.cancelled.set()


class BatchDecoder:
    def __init__(self, decoder: LlamaDecoder, stop_ids: Sequence[int], repetition_penalty: float,
                 queue_max: int | None = None, threads: int = 0) -> None:
        self.decoder = decoder
        self.max_batch = decoder.sequences
        self.stop_ids = frozenset(stop_ids)
        self.penalty = repetition_penalty
        self.queue_max = queue_max
        self.threads = threads
        self._pending: list[Request] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.steps = 0  # decoding steps run, and the sequences they carried (for the bench)
        self.stepped_tokens = 0

    def submit(self, ids: Sequence[int], prefix_len: int, max_new_tokens: int,
               first_ids: Sequence[int] = ()) -> Request:
        """Queue a prompt; raises ``GeneratorBusy`` when ``queue_max`` requests already wait for a row."""
        if not ids or len(ids) + max_new_tokens > self.decoder.max_len:
            raise ValueError(f"a prompt of {len(ids)} tokens plus {max_new_tokens} new ones does not fit the "
                             f"decoder's {self.decoder.max_len} positions")
        request = Request(list(ids), prefix_len, max_new_tokens, tuple(first_ids))
        with self._cond:
            waiting = sum(not r.cancelled.is_set() for r in self._pending)
            if self.queue_max is not None and waiting >= self.queue_max:
                raise GeneratorBusy(f"{waiting} turns already waiting for the model")
            self._pending.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shopdesk-batch-decoder", daemon=True)
                self._thread.start()
            self._cond.notify()
        return request

    # ---- the decoding thread -------------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        torch.set_flush_denormal(True)  # per thread (the CPU's control register): ~4x slower decode without
        active: list[Request] = []
        free = list(range(self.max_batch))
        while True:
            with self._cond:
                while not self._pending and not active:
                    self._cond.wait()
                admitted = self._pending[:len(free)]
                del self._pending[:len(admitted)]
            try:
                with torch.inference_mode():
                    for request in admitted:
                        if request.cancelled.is_set():
                            request.out.put(END)
                            continue
                        request.slot = free.pop()
                        request.position = len(request.ids)
                        request.logits = self.decoder.prefill(request.ids, request.prefix_len, request.slot)
                        active.append(request)
                    active = self._advance(active, free)
            except Exception as exc:  # handed to every turn in flight, which falls back to its template
                log.exception("batch decoding failed")
                for request in {*active, *admitted}:
                    request.out.put(exc)
                active, free = [], list(range(self.max_batch))

    def _advance(self, active: list[Request], free: list[int]) -> list[Request]:
        """Pick each running sequence's next token, then one step for all that go on."""
        going: list[Request] = []
        for request in active:
            token = None if request.cancelled.is_set() else pick(request.logits, request.seen, self.penalty,
                                                                   request.first_ids)
            if token is None or token in self.stop_ids:
                self._finish(request, free)
                continue
            request.out.put(token)
            request.seen.append(token)
            if len(request.seen) >= request.max_new_tokens:
                self._finish(request, free)
                continue
            going.append(request)
        if going:
            logits = self.decoder.step([r.seen[-1] for r in going], [r.position for r in going],
                                       [r.slot for r in going])
            for request, row in zip(going, logits, strict=True):
                request.logits = row
                request.position += 1
            self.steps += 1
            self.stepped_tokens += len(going)
        return going

    @staticmethod
    def _finish(request: Request, free: list[int]) -> None:
        request.out.put(END)
        free.append(request.slot)
        request.slot = -1
