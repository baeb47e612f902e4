"""``NativeStep``: the lean decoder's int8 weights and key/value cache handed to ``decode_step.c``.

The C side reads the tensors in place (no copy): the int8 values and per-row scales of each
quantised projection (the very values fbgemm multiplies), the float32 embedding, norms, rotary
tables and the decoder's key/value cache, which the PyTorch prefill fills and the C step extends.
This object keeps every one of those tensors alive for as long as the C model points at them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.native import NativeUnavailable, load


def _int8_and_scales(module: Any, keep: list[Any]) -> tuple[int, int]:
    """Pointers to a dynamically quantised Linear's int8 weight [out, in] and float32 scale per row."""
    import torch

    weight = module.weight()
    if weight.qscheme() not in (torch.per_channel_symmetric, torch.per_channel_affine) or \
            bool(weight.q_per_channel_zero_points().ne(0).any()):
        raise NativeUnavailable("the native step needs symmetric per-row int8 weights")
    values = weight.int_repr().contiguous()
    scales = weight.q_per_channel_scales().to(torch.float32).contiguous()
    keep += [values, scales]
    return values.data_ptr(), scales.data_ptr()


class NativeStep:
    def __init__(self, decoder: Any, build_dir: Path, threads: int = 1) -> None:
        """``decoder``: an ``app.decoder.LlamaDecoder`` with int8 weights; ``threads``: threads of the C
        step's matrix products (OpenMP), 1 by default for the reason ``Settings.threads`` gives."""
        import torch

        if decoder.dtype != torch.float32 or not callable(getattr(decoder.lm_head, "weight", None)):
            raise NativeUnavailable("the native step runs int8 weights with float32 activations only")
        if decoder.device.type != "cpu":
            raise NativeUnavailable("the native step runs on the CPU only")
        self._lib = load(build_dir)
        keep: list[Any] = []

        def f32(t: Any) -> int:
            t = t.detach().to(torch.float32).contiguous()
            keep.append(t)
            return t.data_ptr()

        for cache in (decoder.keys, decoder.values, decoder.cos, decoder.sin):
            if not cache.is_contiguous() or cache.dtype != torch.float32:
                raise NativeUnavailable("the native step needs contiguous float32 caches")
        layer_ptrs: list[int] = []
        for block in decoder.blocks:
            layer_ptrs += [f32(block.ln1), f32(block.ln2)]
            for name in ("qkv", "o", "gate_up", "down"):
                layer_ptrs += _int8_and_scales(getattr(block, name), keep)
        lm_w, lm_s = _int8_and_scales(decoder.lm_head, keep)
        inter = decoder.blocks[0].down.in_features
        self.vocab = int(decoder.embed.shape[0])
        self.max_batch = decoder.sequences
        dims = (ctypes.c_int32 * 11)(len(decoder.blocks), int(decoder.embed.shape[1]), decoder.heads,
                                     decoder.kv_heads, decoder.head_dim, int(inter), self.vocab, decoder.max_len,
                                     decoder.sequences, decoder.sequences, max(1, threads))
        pointers = (ctypes.c_void_p * len(layer_ptrs))(*layer_ptrs)
        self._handle = self._lib.sd_create(dims, ctypes.c_float(decoder.eps), f32(decoder.embed),
                                           decoder.cos.data_ptr(), decoder.sin.data_ptr(), f32(decoder.norm),
                                           decoder.keys.data_ptr(), decoder.values.data_ptr(), pointers, lm_w, lm_s)
        if not self._handle:
            raise NativeUnavailable("the native step does not support this model's shape")
        self._keep = [*keep, decoder.keys, decoder.values, decoder.cos, decoder.sin]

    def set_threads(self, threads: int) -> None:
        """Threads of the matrix products from the next step on (1: none started)."""
        self._lib.sd_set_threads(self._handle, max(1, threads))

    def step(self, tokens: Sequence[int], positions: Sequence[int], slots: Sequence[int]) -> Any:
        """Logits [len(tokens), vocab] (float32), as ``LlamaDecoder.step``."""
        import torch

        b = len(tokens)
        ints = ctypes.c_int32 * b
        logits = torch.empty((b, self.vocab), dtype=torch.float32)
        status = self._lib.sd_step(self._handle, b, ints(*tokens), ints(*positions), ints(*slots), logits.data_ptr())
        if status != 0:
            raise ValueError(f"native step refused tokens={list(tokens)} positions={list(positions)} "
                             f"slots={list(slots)} (at most {self.max_batch} sequences, positions within the cache)")
        return logits

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.sd_free(handle)
