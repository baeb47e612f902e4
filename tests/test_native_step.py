"""The native decoding step (app/native) against the lean decoder's PyTorch step: same logits, same tokens.

Built with the machine's C compiler into a tmp dir. Where none is installed the tests skip with the
reason, except under CI=true (CI has gcc), where they fail: a missing build there is a defect.
"""

from __future__ import annotations

import os

import pytest

from app.decoder import LlamaDecoder
from app.native import NativeUnavailable, build, library_path


def _build_or_skip(build_dir):
    """The library built into ``build_dir``; a skip with the reason where it cannot be (a failure under CI)."""
    try:
        return build(build_dir)
    except NativeUnavailable as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no native step here: {exc}")


def _native_or_skip(decoder: LlamaDecoder, build_dir, threads: int = 1) -> None:
    _build_or_skip(build_dir)
    assert decoder.use_native(build_dir, threads)


@pytest.fixture(scope="module")
def tiny_model():
    """A small random Llama (2 layers, grouped-query attention); weights scaled up so logits spread."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


def _pair(model, tmp_path, threads: int = 1, sequences: int = 3) -> tuple[LlamaDecoder, LlamaDecoder]:
    pytorch = LlamaDecoder(model, int8=True, max_len=128, sequences=sequences)
    native = LlamaDecoder(model, int8=True, max_len=128, sequences=sequences)
    _native_or_skip(native, tmp_path / "native", threads)
    return pytorch, native


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_steps_give_the_pytorch_logits(tiny_model, tmp_path, threads):
    import torch

    pytorch, native = _pair(tiny_model, tmp_path, threads)
    assert pytorch.native is None and native.native is not None
    prompts = {0: list(range(1, 20)), 2: list(range(30, 41))}  # two cache rows of different lengths
    with torch.inference_mode():
        for decoder in (pytorch, native):
            for slot, ids in prompts.items():
                decoder.prefill(ids, 0, slot)
        positions = [len(prompts[0]), len(prompts[2])]
        for i in range(6):
            tokens = [5 + i, 70 + 3 * i]
            want = pytorch.step(tokens, positions, [0, 2])
            got = native.step(tokens, positions, [0, 2])
            assert got.shape == want.shape == (2, 300)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
            assert got.argmax(-1).tolist() == want.argmax(-1).tolist()
            positions = [p + 1 for p in positions]
        # the keys and values the native step wrote are the PyTorch step's
        torch.testing.assert_close(native.keys, pytorch.keys, rtol=0, atol=1e-4)
        torch.testing.assert_close(native.values, pytorch.values, rtol=0, atol=1e-4)


def test_single_sequence_generation_is_the_same(tiny_model, tmp_path):
    pytorch, native = _pair(tiny_model, tmp_path, sequences=1)
    ids = [3, 17, 42, 8, 99, 150, 7]
    want = list(pytorch.generate(ids, 30, lambda: False, repetition_penalty=1.15))
    got = list(native.generate(ids, 30, lambda: False, repetition_penalty=1.15))
    assert got == want and len(got) == 30


def test_out_of_range_arguments_are_refused_not_written(tiny_model, tmp_path):
    import torch

    _, native = _pair(tiny_model, tmp_path, sequences=2)
    before = native.keys.clone()
    for tokens, positions, slots in (([300], [0], [0]), ([1], [128], [0]), ([1], [0], [2]), ([1, 2, 3], [0] * 3,
                                                                                             [0, 1, 0])):
        with pytest.raises(ValueError, match="native step refused"):
            native.step(tokens, positions, slots)
    assert torch.equal(native.keys, before)


def test_float_weights_keep_the_pytorch_step(tiny_model, tmp_path):
    decoder = LlamaDecoder(tiny_model, int8=False, max_len=64)
    assert not decoder.use_native(tmp_path / "native")
    assert decoder.native is None


def test_an_unwritable_cache_or_a_broken_compiler_falls_back_to_the_pytorch_step(tiny_model, tmp_path, monkeypatch):
    _build_or_skip(tmp_path / "probe")  # it builds here: what fails below is the cache or the compiler
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the build directory should be")
    decoder = LlamaDecoder(tiny_model, int8=True, max_len=64)
    assert not decoder.use_native(blocker / "native") and decoder.native is None
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    with pytest.raises(NativeUnavailable, match="failed to build"):
        build(tmp_path / "other")
    assert not decoder.use_native(tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []  # no half-written library left


def test_the_library_is_named_by_its_source_and_built_once(tmp_path):
    first = _build_or_skip(tmp_path)
    assert first == library_path(tmp_path) and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left behind


@pytest.mark.integration
def test_bundled_model_is_as_faithful_to_float32_as_the_pytorch_int8_step(real_settings, tmp_path):
    """SmolLM2 on real prompts, teacher-forced with the float32 model's greedy tokens: the native step's
    next-token choices agree with float32 as often as the PyTorch int8 step's do.

    Not token for token with the PyTorch int8 step: both quantise each activation vector to 7 bits with
    one scale, and SmolLM2 has a few very large activations, so one quantisation step is coarse; a float
    difference in the last bit (an RMS norm summed in another order) that rounds one activation the other
    way moves later logits by ~1 (measured: identical logits for the first steps of a reply, then now and
    then the other of two tokens within ~0.9). Both approximate float32, which this test holds them to:
    of these 120 steps PyTorch's int8 step picked float32's token 98 times, the native step 100 times.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.generator import convert_bundled
    from app.prompts import build_messages
    from app.schema import Facts

    path = convert_bundled(real_settings.model_cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    torch.set_flush_denormal(True)
    reference = LlamaDecoder(model)
    pytorch = LlamaDecoder(model, int8=True)
    native = LlamaDecoder(model, int8=True)
    _native_or_skip(native, tmp_path / "native")
    cases = [(Facts(kind="order_status", route="order_status", data={"status_text": "in transit"}),
              "where is my order SD-10002?"),
             (Facts(kind="thanks", route="smalltalk"), "thanks so much!"),
             (Facts(kind="faq_answer", route="faq"), "can i send back shoes i wore outside?"),
             (Facts(kind="order_status", route="order_status", data={"status_text": "delayed"}),
              "my parcel is late again, what is going on")]
    agree = {"pytorch": 0, "native": 0}
    steps = 0
    with torch.inference_mode():
        for facts, message in cases:
            messages = build_messages(facts, message, (), "Fern & Field")
            ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
                       ["input_ids"])
            logits = {name: d.prefill(ids, 0) for name, d in
                      (("reference", reference), ("pytorch", pytorch), ("native", native))}
            for position in range(len(ids), len(ids) + 30):
                token = int(logits["reference"].argmax())
                for name in agree:
                    agree[name] += int(logits[name].argmax()) == token
                steps += 1
                logits = {name: d._forward((token,), position) for name, d in
                          (("reference", reference), ("pytorch", pytorch), ("native", native))}
    assert steps == 120
    assert agree["pytorch"] >= 90, agree  # int8 itself stays close to float32 (the guard judges every reply anyway)
    assert agree["native"] >= agree["pytorch"] - 3, agree
