"""Continuous batching (app/batching.py): a counting decoder for the scheduling, the bundled model for
the numbers (a sequence decoded beside others gets the tokens it gets alone, float32)."""

from __future__ import annotations

import threading
import time

import pytest

from app.batching import END, BatchDecoder
from app.errors import GeneratorBusy

VOCAB = 50
STOP = 0


class CountingDecoder:
    """Next token = last token + 1 (mod VOCAB); records every step's batch. Real torch tensors."""

    max_len = 256

    def __init__(self, sequences: int, fail_at_step: int | None = None, step_delay_s: float = 0.0) -> None:
        self.sequences = sequences
        self.batches: list[list[int]] = []
        self.fail_at_step = fail_at_step
        self.step_delay_s = step_delay_s
        self.prefilled: list[tuple[int, int]] = []  # (slot, prompt length)

    def _logits(self, last: int):
        import torch

        row = torch.zeros(VOCAB)
        row[(last + 1) % VOCAB] = 1.0
        return row

    def prefill(self, ids, prefix_len, slot):
        self.prefilled.append((slot, len(ids)))
        return self._logits(ids[-1])

    def step(self, tokens, positions, slots):
        import torch

        if self.fail_at_step is not None and len(self.batches) == self.fail_at_step:
            raise RuntimeError("the decoder broke")
        time.sleep(self.step_delay_s)
        self.batches.append(list(slots))
        return torch.stack([self._logits(t) for t in tokens])


def drain(request, timeout=5.0):
    out = []
    while True:
        item = request.out.get(timeout=timeout)
        if item is END or isinstance(item, Exception):
            return out, item
        out.append(item)


def test_concurrent_requests_share_steps_and_each_gets_its_own_tokens():
    dec = CountingDecoder(sequences=4, step_delay_s=0.01)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0)
    requests = [batch.submit([start], 0, 6) for start in (10, 20, 30)]
    results = [drain(r) for r in requests]
    assert [tokens for tokens, _ in results] == [[11, 12, 13, 14, 15, 16], [21, 22, 23, 24, 25, 26],
                                                 [31, 32, 33, 34, 35, 36]]
    assert max(len(b) for b in dec.batches) >= 2  # steps carried several sequences at once


def test_a_stop_token_ends_a_request_and_frees_its_row():
    dec = CountingDecoder(sequences=1)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0)
    first = batch.submit([VOCAB - 3], 0, 20)  # 48, 49, then 0: the stop token
    assert drain(first) == ([VOCAB - 2, VOCAB - 1], END)
    second = batch.submit([5], 0, 2)  # the one row is free again
    assert drain(second) == ([6, 7], END)


def test_more_requests_than_rows_wait_their_turn():
    dec = CountingDecoder(sequences=2)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0)
    requests = [batch.submit([start], 0, 3) for start in (1, 10, 20, 30, 40)]
    assert [drain(r)[0] for r in requests] == [[2, 3, 4], [11, 12, 13], [21, 22, 23], [31, 32, 33], [41, 42, 43]]
    assert max(len(b) for b in dec.batches) <= 2 and {slot for slot, _ in dec.prefilled} == {0, 1}


def test_a_cancelled_request_leaves_at_the_next_step():
    dec = CountingDecoder(sequences=2, step_delay_s=0.01)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0)
    long = batch.submit([1], 0, 40)
    assert long.out.get(timeout=5) == 2
    long.cancel()
    tokens, end = drain(long)
    assert end is END and len(tokens) < 38
    assert drain(batch.submit([5], 0, 2)) == ([6, 7], END)


def test_the_waiting_line_is_bounded():
    dec = CountingDecoder(sequences=1, step_delay_s=0.05)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0, queue_max=1)
    running = batch.submit([1], 0, 40)
    assert running.out.get(timeout=5) == 2  # admitted: it holds the only row
    waiting = batch.submit([10], 0, 2)
    with pytest.raises(GeneratorBusy):
        batch.submit([20], 0, 2)
    running.cancel()
    assert drain(waiting) == ([11, 12], END)


def test_a_failing_decoder_fails_every_request_in_flight_and_recovers():
    dec = CountingDecoder(sequences=2, fail_at_step=1, step_delay_s=0.01)
    batch = BatchDecoder(dec, stop_ids=[STOP], repetition_penalty=1.0)
    requests = [batch.submit([1], 0, 10), batch.submit([10], 0, 10)]
    ends = [drain(r)[1] for r in requests]
    assert all(isinstance(e, RuntimeError) for e in ends)
    dec.fail_at_step = None
    assert drain(batch.submit([20], 0, 3)) == ([21, 22, 23], END)  # rows were freed


def test_a_prompt_that_does_not_fit_is_refused():
    batch = BatchDecoder(CountingDecoder(sequences=1), stop_ids=[STOP], repetition_penalty=1.0)
    with pytest.raises(ValueError):
        batch.submit(list(range(250)), 0, 10)


@pytest.mark.integration
def test_sequences_decoded_together_get_the_tokens_they_get_alone(real_settings):
    from app.generator import LocalGenerator
    from app.prompts import build_messages
    from app.schema import Facts

    questions = ["hello!", "thanks so much, that was helpful", "ok bye"]
    prompts = [build_messages(Facts(kind=kind, route="smalltalk"), q, (), "Fern & Field")
               for kind, q in zip(("greeting", "thanks", "goodbye"), questions, strict=True)]
    alone = LocalGenerator("bundled", real_settings.model_cache_dir, device="cpu", dtype="float32", threads=1)
    expected = ["".join(alone.stream(m, 24, lambda: False)) for m in prompts]
    together = LocalGenerator("bundled", real_settings.model_cache_dir, device="cpu", dtype="float32", threads=1,
                              batch=3)
    together.warm_up()
    got: dict[int, str] = {}
    start = threading.Barrier(len(prompts))

    def run(i: int) -> None:
        start.wait()
        got[i] = "".join(together.stream(prompts[i], 24, lambda: False))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [got[i] for i in range(len(prompts))] == expected and all(expected)
    assert together._batcher.stepped_tokens > together._batcher.steps  # some steps carried several sequences
