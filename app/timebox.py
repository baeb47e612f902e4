"""Running a generator within the turn's time budget, whatever the generator does.

A generator is asked to stop through ``should_stop`` (checked between tokens), but one that blocks
*inside* a token (a generation server that accepted the request and went silent, a stuck socket, a
buggy plug-in) would never ask. So a generator runs in a helper thread and the turn waits for its
pieces at most until the deadline; then the turn goes on with the template reply and the helper is
left to notice ``should_stop`` (or its own timeout) and end by itself.

The exception is a generator that declares ``decodes_in_caller = True`` (the local transformers model):
it decodes in the calling thread, because a helper thread competing with the OpenMP team of the thread
that first used torch measured ~40% slower, and it cannot block inside a token on anything but its own
arithmetic (one forward pass, milliseconds), so the budget holds to within one token.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from app.errors import ModelError
from app.generator import Generator

log = logging.getLogger(__name__)


class GenerationTimeout(ModelError):
    """The budget ran out before the generator finished."""


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.at = clock() + seconds

    def expired(self) -> bool:
        return self.clock() > self.at

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())


_DONE = object()


def generate_within(generator: Generator, messages: list[dict[str, str]], max_new_tokens: int,
                    deadline: Deadline) -> str:
    """The generator's whole text, or ``GenerationTimeout`` once the deadline passes; any failure of
    the generator comes back as ``ModelError``."""
    if getattr(generator, "decodes_in_caller", False):
        try:
            text = "".join(generator.stream(messages, max_new_tokens, deadline.expired))
        except ModelError:
            raise
        except Exception as exc:  # a bug in a generator costs the shopper the model's phrasing, not the turn
            raise ModelError(f"generator {generator.name} failed: {exc!r}") from exc
    else:
        text = _in_helper_thread(generator, messages, max_new_tokens, deadline)
    if deadline.expired():
        raise GenerationTimeout(f"{generator.name} did not finish within the time budget")
    return text


def _in_helper_thread(generator: Generator, messages: list[dict[str, str]], max_new_tokens: int,
                      deadline: Deadline) -> str:
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    abandoned = threading.Event()

    def should_stop() -> bool:
        return abandoned.is_set() or deadline.expired()

    def run() -> None:
        try:
            for piece in generator.stream(messages, max_new_tokens, should_stop):
                out.put(piece)
                if abandoned.is_set():
                    return
            out.put(_DONE)
        except Exception as exc:  # handed to the turn's thread, which falls back to the template
            out.put(exc)

    threading.Thread(target=run, name=f"generate:{generator.name}", daemon=True).start()
    pieces: list[str] = []
    while True:
        try:
            item = out.get(timeout=deadline.remaining())
        except queue.Empty:
            abandoned.set()
            log.warning("generator %s still busy when the time budget ran out; left to stop by itself",
                        generator.name)
            raise GenerationTimeout(f"{generator.name} did not finish within the time budget") from None
        if item is _DONE:
            return "".join(pieces)
        if isinstance(item, ModelError):
            raise item
        if isinstance(item, Exception):
            raise ModelError(f"generator {generator.name} failed: {item!r}") from item
        pieces.append(str(item))
