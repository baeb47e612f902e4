"""What both decoding paths of ``LocalGenerator`` share: detokenising, the repetition penalty on the
generated tokens, the first-token restriction of openers, int8 weights for ``generate``, and the
``generate`` path itself (for models ``app.decoder`` does not support, and CUDA)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

# Applied to the generated tokens only (app/decoder.py says why); 1.15 keeps SmolLM2 from looping.
REPETITION_PENALTY = 1.15


class Detokenizer:
    """Token ids in, new text out; holds back a piece that ends inside a multi-byte character."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.sent = 0

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or len(text) <= self.sent:
            return ""
        piece, self.sent = text[self.sent:], len(text)
        return piece


def generated_only_penalty(prompt_len: int, penalty: float = REPETITION_PENALTY) -> Any:
    """A transformers logits processor: ``repetition_penalty`` over the tokens after the prompt."""
    import torch
    from transformers import LogitsProcessor

    class GeneratedOnlyPenalty(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            generated = input_ids[:, prompt_len:]
            if generated.shape[1] == 0:
                return scores
            picked = torch.gather(scores, 1, generated)
            return scores.scatter(1, generated, torch.where(picked < 0, picked * penalty, picked / penalty))

    return GeneratedOnlyPenalty()


def first_token_filter(prompt_len: int, allowed: Sequence[int]) -> Any:
    """A transformers logits processor: the first generated token is one of ``allowed``."""
    import torch
    from transformers import LogitsProcessor

    class FirstTokenFilter(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if input_ids.shape[1] != prompt_len:
                return scores
            keep = torch.full_like(scores, float("-inf"))
            keep[:, list(allowed)] = 0
            return scores + keep

    return FirstTokenFilter()


def first_token_ids(tokenizer: Any, words: Sequence[str]) -> tuple[int, ...]:
    """The token each word starts with at the beginning of a reply."""
    return tuple(sorted({tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}))


def quantize_int8(model: Any) -> Any:
    """Int8 weights for a transformers model's Linear layers (the path for models the decoder lacks)."""
    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)


def generate_with_transformers(model: Any, tokenizer: Any, device: str, messages: list[dict[str, str]],
                               max_new_tokens: int, should_stop: Callable[[], bool],
                               on_text: Callable[[str], None], first_words: Sequence[str] = ()) -> None:
    """Greedy decoding through transformers' ``generate``; ``on_text`` gets each new piece of text."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    class Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return should_stop()

    class Pieces(BaseStreamer):
        def __init__(self) -> None:
            self.text = Detokenizer(tokenizer)
            self.prompt_seen = False

        def put(self, value: Any) -> None:
            if not self.prompt_seen:  # the first call carries the prompt
                self.prompt_seen = True
                return
            for token in value.reshape(-1).tolist():
                piece = self.text.add(int(token))
                if piece:
                    on_text(piece)

        def end(self) -> None:
            pass

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    prompt_len = inputs["input_ids"].shape[1]
    processors = [generated_only_penalty(prompt_len)]
    first = first_token_ids(tokenizer, first_words)
    if first:
        processors.append(first_token_filter(prompt_len, first))
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                       logits_processor=LogitsProcessorList(processors), streamer=Pieces(),
                       stopping_criteria=StoppingCriteriaList([Stop()]), pad_token_id=tokenizer.eos_token_id)
