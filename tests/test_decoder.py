"""The lean decoder (app/decoder.py) against transformers' generate on the bundled SmolLM2 weights."""

import pytest

from app.decoder import LlamaDecoder
from app.decoding import Detokenizer, generated_only_penalty
from app.generator import LocalGenerator, convert_bundled
from app.prompts import OPENER_STARTS, build_messages
from app.schema import Facts

SHOP = "Fern & Field"


class ByteTokenizer:
    """Stands in for a tokenizer whose tokens are single UTF-8 bytes (a multi-byte character spans tokens)."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def test_detokenizer_holds_back_half_a_character():
    text = Detokenizer(ByteTokenizer())
    pieces = [text.add(b) for b in "a é".encode()]
    assert pieces == ["a", " ", "", "é"]


@pytest.fixture(scope="module")
def float32_model(real_settings):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = convert_bundled(real_settings.model_cache_dir)
    torch.set_flush_denormal(True)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


def _ids(tokenizer, facts: Facts, message: str) -> tuple[list[int], int]:
    messages = build_messages(facts, message, (), SHOP)
    ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])
    prefix = list(tokenizer.apply_chat_template(messages[:-1], return_dict=True)["input_ids"])
    assert ids[:len(prefix)] == prefix
    return ids, len(prefix)


ORDER = Facts(kind="order_status", route="order_status", data={"status_text": "in transit"})


@pytest.mark.integration
def test_greedy_output_equals_generate(float32_model):
    import torch

    model, tokenizer = float32_model
    decoder = LlamaDecoder(model)
    for facts, message in ((ORDER, "where is my order SD-10002?"), (Facts(kind="thanks", route="smalltalk"), "thx!")):
        ids, _ = _ids(tokenizer, facts, message)
        ours = list(decoder.generate(ids, 24, lambda: False, stop_ids=(tokenizer.eos_token_id,),
                                     repetition_penalty=1.15))
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False,
                                 logits_processor=[generated_only_penalty(len(ids), 1.15)],
                                 pad_token_id=tokenizer.eos_token_id)
        theirs = [t for t in out[0, len(ids):].tolist() if t != tokenizer.eos_token_id]
        assert ours == theirs and ours, (tokenizer.decode(ours), tokenizer.decode(theirs))


@pytest.mark.integration
def test_a_cached_prefix_is_skipped_and_changes_nothing(float32_model):
    model, tokenizer = float32_model
    decoder = LlamaDecoder(model, int8=True)
    first, prefix_len = _ids(tokenizer, ORDER, "where is my order SD-10002? ada.park@example.com")
    second, same_prefix = _ids(tokenizer, ORDER, "has SD-10003 shipped yet")
    assert prefix_len == same_prefix and prefix_len > len(second) // 2  # the fixed part is most of the prompt

    def reply(ids):
        return list(decoder.generate(ids, 20, lambda: False, stop_ids=(tokenizer.eos_token_id,), prefix_len=prefix_len))

    reply(first)
    assert decoder.reused_tokens == 0
    cached = reply(second)
    assert decoder.reused_tokens == prefix_len
    decoder.forget()
    assert reply(second) == cached and decoder.reused_tokens == 0


@pytest.mark.integration
def test_int8_reads_about_a_quarter_of_the_float32_bytes(float32_model):
    model, _ = float32_model
    assert LlamaDecoder(model, int8=True).weight_bytes < 0.3 * LlamaDecoder(model).weight_bytes


@pytest.mark.integration
def test_local_generator_streams_and_frees_the_model_when_the_caller_stops(real_settings):
    gen = LocalGenerator("bundled", real_settings.model_cache_dir, device="cpu", dtype="int8")
    messages = build_messages(ORDER, "where is my order SD-10002?", (), SHOP)
    for _piece in gen.stream(messages, 30, lambda: False):
        break  # the shopper went away after the first piece
    assert gen.decoder is not None and gen.dtype == "int8"
    pieces = list(gen.stream(messages, 30, lambda: False))  # the model is free again
    assert len(pieces) >= 2 and "".join(pieces).strip()
    assert "".join(pieces).split()[0].strip(",.!") in OPENER_STARTS  # an opener starts from the fixed words
    stopped = list(gen.stream(messages, 30, lambda: True))  # asked to stop: one token at most
    assert len(stopped) <= 1
