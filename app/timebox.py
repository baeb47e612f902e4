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


class GenerationCancelled(GenerationTimeout):
    """The shopper left (the stream's client went away): nothing more is worth generating."""


def _never() -> bool:
    return False


def _never_complete(text: str) -> bool:
    return False


def generate_within(generator: Generator, messages: list[dict[str, str]], max_new_tokens: int,
                    deadline: Deadline, cancelled: Callable[[], bool] = _never,
                    complete: Callable[[str], bool] = _never_complete) -> str:
    """The generator's text, or ``GenerationTimeout`` once the deadline passes (``GenerationCancelled``
    once ``cancelled()`` holds); any failure of the generator comes back as ``ModelError``.

    ``complete(text)``: the text so far is all the caller will use (an opener's first sentence), so
    decoding stops there instead of running to the model's end or ``max_new_tokens``."""

    def should_stop() -> bool:
        return deadline.expired() or cancelled()

    if getattr(generator, "decodes_in_caller", False):
        pieces: list[str] = []
        stream = generator.stream(messages, max_new_tokens, should_stop)
        try:
            for piece in stream:
                pieces.append(piece)
                if complete("".join(pieces)):
                    break
        except ModelError:
            raise
        except Exception as exc:  # a bug in a generator costs the shopper the model's phrasing, not the turn
            raise ModelError(f"generator {generator.name} failed: {exc!r}") from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # now, not at garbage collection: the local model is held until its stream ends
        text = "".join(pieces)
    else:
        text = _in_helper_thread(generator, messages, max_new_tokens, deadline, should_stop, complete)
    if cancelled():
        raise GenerationCancelled(f"{generator.name} stopped: the client went away")
    if deadline.expired():
        raise GenerationTimeout(f"{generator.name} did not finish within the time budget")
    return text


def _in_helper_thread(generator: Generator, messages: list[dict[str, str]], max_new_tokens: int,
                      deadline: Deadline, stop: Callable[[], bool], complete: Callable[[str], bool]) -> str:
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    abandoned = threading.Event()

    def should_stop() -> bool:
        return abandoned.is_set() or stop()

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
            item = out.get(timeout=min(deadline.remaining(), 0.1))
        except queue.Empty:
            if not stop():
                continue
            abandoned.set()
            log.warning("generator %s still busy when the turn stopped waiting; left to stop by itself",
                        generator.name)
            return "".join(pieces)  # generate_within says why (time budget or cancelled)
        if item is _DONE:
            return "".join(pieces)
        if isinstance(item, ModelError):
            raise item
        if isinstance(item, Exception):
            raise ModelError(f"generator {generator.name} failed: {item!r}") from item
        pieces.append(str(item))
        if complete("".join(pieces)):
            abandoned.set()  # the generator stops at its next piece
            return "".join(pieces)
