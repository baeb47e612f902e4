"""Greedy decoding for Llama-architecture models (the bundled SmolLM2), leaner than ``generate``.

Why not ``transformers.generate``: on a small model on CPU a large share of each token is spent
outside the matrix products (30 layers of ~40 small operations, a key/value cache that grows by
concatenation, logits processors), and int8 weights need fewer, larger matrix products to pay off.
This decoder, measured against ``generate`` by ``shopdesk bench``:

- fuses the q/k/v and the gate/up projections: 4 matrix products per layer instead of 7;
- writes keys and values into a preallocated cache instead of concatenating per token;
- keeps the key/value cache of prompt prefixes it has seen (the fixed system prompt and examples of
  ``app.prompts``), so a turn prefills only the tokens after that prefix;
- optionally holds the weights as int8 (dynamic quantisation, per output channel), activations float32;
- penalises repeats among the generated tokens only: penalising the prompt's tokens, as
  ``repetition_penalty`` does, kept the model from copying the facts it was given.

Its greedy output equals ``generate``'s on the same weights for a prompt computed in one piece
(tests/test_decoder.py); a prompt with a prefix is computed as prefix + rest, whose rounding in
bfloat16 or int8 can differ slightly from one piece. One instance serves one generation at a time
(``LocalGenerator`` holds a lock around it). Helpers both decoding paths share: ``app.decoding``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

SUPPORTED_TYPES = ("llama",)


def supports(model: Any) -> bool:
    """Plain Llama blocks only: no biases, SiLU MLP, unscaled rotary embeddings."""
    c = model.config
    rope = dict(getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {})
    return (getattr(c, "model_type", "") in SUPPORTED_TYPES and c.hidden_act == "silu"
            and not getattr(c, "attention_bias", False) and not getattr(c, "mlp_bias", False)
            and rope.get("rope_type", "default") == "default" and getattr(c, "pretraining_tp", 1) == 1)


def _rope_theta(config: Any) -> float:
    rope = dict(getattr(config, "rope_parameters", None) or {})
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def pick(logits: Any, seen: Sequence[int], repetition_penalty: float = 1.0, first_ids: Sequence[int] = ()) -> int:
    """The greedy next token: repeats among ``seen`` (the generated tokens) penalised; the first
    token restricted to ``first_ids`` when given. ``logits`` (one row) is changed in place."""
    import torch

    if seen and repetition_penalty != 1.0:
        index = torch.tensor(sorted(set(seen)), device=logits.device)
        scores = logits[index]
        logits[index] = torch.where(scores < 0, scores * repetition_penalty, scores / repetition_penalty)
    if first_ids and not seen:
        return int(first_ids[int(logits[list(first_ids)].argmax())])
    return int(logits.argmax())


def _linear(weight: Any) -> Any:
    from torch import nn

    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
    layer.weight = nn.Parameter(weight.detach(), requires_grad=False)
    return layer


class _Block:
    """One decoder layer's weights, projections fused."""

    LINEARS = ("qkv", "o", "gate_up", "down")

    def __init__(self, layer: Any) -> None:
        import torch

        a, m = layer.self_attn, layer.mlp
        self.qkv = _linear(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        self.o = _linear(a.o_proj.weight)
        self.gate_up = _linear(torch.cat([m.gate_proj.weight, m.up_proj.weight]))
        self.down = _linear(m.down_proj.weight)
        self.ln1 = layer.input_layernorm.weight.detach()
        self.ln2 = layer.post_attention_layernorm.weight.detach()


class LlamaDecoder:
    def __init__(self, model: Any, int8: bool = False, max_len: int = 2048, prefix_slots: int = 8,
                 sequences: int = 1) -> None:
        """``sequences``: key/value cache rows, one per sequence decoded at the same time (``step``)."""
        import torch

        if not supports(model):
            raise ValueError(f"{type(model).__name__} is not a plain Llama model; use transformers' generate")
        c = model.config
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps = c.rms_norm_eps
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach()
        self.dtype = torch.float32 if int8 else self.embed.dtype  # activations
        self.device = self.embed.device
        self.blocks = [_Block(layer) for layer in inner.layers]
        self.norm = inner.norm.weight.detach()
        self.lm_head = _linear(model.get_output_embeddings().weight)
        if int8:
            self._quantize()
        self.max_len = min(max_len, getattr(c, "max_position_embeddings", max_len))
        inv = 1.0 / (_rope_theta(c) ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        freqs = torch.outer(torch.arange(self.max_len, dtype=torch.float32), inv)
        angles = torch.cat([freqs, freqs], dim=-1).to(self.device)
        self.cos, self.sin = angles.cos().to(self.dtype), angles.sin().to(self.dtype)
        self.sequences = max(1, sequences)
        shape = (len(self.blocks), self.sequences, self.kv_heads, self.max_len, self.head_dim)
        with torch.inference_mode():
            self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
            self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.prefix_slots = prefix_slots
        self.prefixes: OrderedDict[tuple[int, ...], tuple[Any, Any]] = OrderedDict()
        self.reused_tokens = 0  # of the last prompt: positions taken from the cache, not computed
        self.native: Any = None  # app.native.step.NativeStep once use_native() succeeded

    def use_native(self, build_dir: Any, threads: int = 1) -> bool:
        """Decode steps (one new token per sequence) in one C call (``app/native``) from now on, when it
        builds here and the weights are int8; else keep the PyTorch step and log why. Prompts are still
        prefilled by PyTorch (fbgemm is efficient on many rows at once) into the same key/value cache."""
        import logging

        from app.native import NativeUnavailable
        from app.native.step import NativeStep

        try:
            self.native = NativeStep(self, build_dir, threads)
        except NativeUnavailable as exc:
            logging.getLogger(__name__).warning("decoding with PyTorch's step, not the native one: %s", exc)
            self.native = None
        return self.native is not None

    def _quantize(self) -> None:
        import torch
        from torch import nn

        holder = nn.ModuleDict({f"{i}_{name}": getattr(b, name) for i, b in enumerate(self.blocks)
                                for name in _Block.LINEARS})
        holder["lm_head"] = self.lm_head
        with warnings.catch_warnings():  # torch.ao points at torchao; the eager API still works here
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(
                holder, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8,
                inplace=True)
        for i, b in enumerate(self.blocks):
            for name in _Block.LINEARS:
                setattr(b, name, holder[f"{i}_{name}"])
        self.lm_head = holder["lm_head"]

    def _modules(self) -> list[Any]:
        return [getattr(b, name) for b in self.blocks for name in _Block.LINEARS] + [self.lm_head]

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights read per generated token (all matrices, norms; one embedding row)."""
        import torch

        total = self.norm.numel() * self.norm.element_size() + self.embed.shape[1] * self.embed.element_size()
        for module in self._modules():
            weight = getattr(module, "weight", None)
            if callable(weight):  # a quantised Linear: int8 values plus a scale per channel
                w = weight()
                total += w.numel() + w.shape[0] * 16  # int8 values; a float64 scale and int64 zero per row
            elif isinstance(weight, torch.Tensor):
                total += weight.numel() * weight.element_size()
        for block in self.blocks:
            total += (block.ln1.numel() + block.ln2.numel()) * block.ln1.element_size()
        return total

    # ---- the model ---------------------------------------------------------------------------------
    def _rms(self, x: Any, weight: Any) -> Any:
        import torch

        xf = x.float()  # transformers' order of operations (torch's fused rms_norm measured slower here)
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * weight.to(x.dtype)

    def _rotate(self, x: Any, cos: Any, sin: Any) -> Any:
        import torch

        half = self.head_dim // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def _attend(self, q: Any, i: int, end: int, mask: Any, causal: bool, slot: int = 0) -> Any:
        """Attention of the new queries over the cache's first ``end`` positions; [1, n, heads * head_dim]."""
        import torch.nn.functional as F

        keys, values = self.keys[i, slot:slot + 1, :, :end], self.values[i, slot:slot + 1, :, :end]
        n = q.shape[2]
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal, enable_gqa=True)
        return out.transpose(1, 2).reshape(1, n, self.heads * self.head_dim)

    def _forward(self, ids: Sequence[int], start: int, slot: int = 0) -> Any:
        """Run ``ids`` at positions ``start``... of sequence ``slot``; their keys/values go into its
        cache row; the last position's logits back."""
        import torch
        import torch.nn.functional as F

        n = len(ids)
        if n == 1 and self.native is not None:
            return self.native.step(ids, (start,), (slot,))[0]
        end = start + n
        x = F.embedding(torch.tensor([list(ids)], device=self.device), self.embed).to(self.dtype)
        cos, sin = self.cos[start:end], self.sin[start:end]
        mask = None
        if n > 1 and start:  # new tokens see the cached prefix and, causally, each other
            mask = torch.ones(n, end, dtype=torch.bool, device=self.device).tril(diagonal=start)
        for i, block in enumerate(self.blocks):
            q, k, v = self._project(block, x, cos, sin)
            self.keys[i, slot:slot + 1, :, start:end] = k
            self.values[i, slot:slot + 1, :, start:end] = v
            x = self._mlp(block, x + block.o(self._attend(q, i, end, mask, n > 1 and not start, slot)))
        return self._logits(x)[0]

    def _project(self, block: _Block, x: Any, cos: Any, sin: Any) -> tuple[Any, Any, Any]:
        """Queries, keys and values of ``x`` [b, n, hidden], [b, heads, n, head_dim], with the rotary angles
        applied (queries and keys turn by the same angles: rotated together, one set of operations)."""
        b, n = x.shape[0], x.shape[1]
        qk_heads = self.heads + self.kv_heads
        qk_size = qk_heads * self.head_dim
        qkv = block.qkv(self._rms(x, block.ln1))
        qk = self._rotate(qkv[..., :qk_size].view(b, n, qk_heads, self.head_dim).transpose(1, 2), cos, sin)
        values = qkv[..., qk_size:].view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        return qk[:, :self.heads], qk[:, self.heads:], values

    def _mlp(self, block: _Block, x: Any) -> Any:
        """The block's feed-forward half, residual included."""
        import torch.nn.functional as F

        gate, up = block.gate_up(self._rms(x, block.ln2)).chunk(2, dim=-1)
        return x + block.down(F.silu(gate) * up)

    def _logits(self, x: Any) -> Any:
        """Logits of each sequence's last position, [b, vocab], float32."""
        return self.lm_head(self._rms(x[:, -1], self.norm)).float()

    def step(self, tokens: Sequence[int], positions: Sequence[int], slots: Sequence[int]) -> Any:
        """One new token for each of several sequences at once: ``tokens[b]`` at ``positions[b]`` of
        cache row ``slots[b]``; logits back, [len(tokens), vocab].

        The weights are read once for all of them (decoding is bound by reading weights), so B
        sequences cost little more than one. Each attends over its own cache row and length. In
        float32 each row's logits equal ``_forward``'s for that sequence alone (tests/test_decoder.py);
        with int8 weights the activations of a step share one quantisation scale, so a reply can
        differ slightly with what else is decoded beside it (the guard judges every reply anyway).
        """
        import torch
        import torch.nn.functional as F

        if self.native is not None:
            return self.native.step(tokens, positions, slots)
        b = len(tokens)
        device = self.device
        x = F.embedding(torch.tensor([[t] for t in tokens], device=device), self.embed).to(self.dtype)  # [b, 1, d]
        pos = torch.tensor(list(positions), device=device)
        rows = torch.tensor(list(slots), device=device)
        cos, sin = self.cos[pos][:, None, None, :], self.sin[pos][:, None, None, :]  # [b, 1, 1, head_dim]
        for i, block in enumerate(self.blocks):
            q, k, v = self._project(block, x, cos, sin)
            self.keys[i][rows, :, pos] = k[:, :, 0]
            self.values[i][rows, :, pos] = v[:, :, 0]
            out = torch.cat([F.scaled_dot_product_attention(
                q[r:r + 1], self.keys[i, s:s + 1, :, :p + 1], self.values[i, s:s + 1, :, :p + 1],
                enable_gqa=True) for r, (s, p) in enumerate(zip(slots, positions, strict=True))])
            x = self._mlp(block, x + block.o(out.transpose(1, 2).reshape(b, 1, self.heads * self.head_dim)))
        return self._logits(x)

    def forget(self) -> None:
        """Drop every cached prompt prefix (a benchmark's cold start)."""
        self.prefixes.clear()

    # ---- decoding ----------------------------------------------------------------------------------
    def prefill(self, ids: list[int], prefix_len: int, slot: int = 0) -> Any:
        """The prompt in two fixed pieces, the prefix (from the cache when there) and the rest.

        Always the same two pieces, cached or not: int8 activations are quantised with one scale per
        piece, so computing a prompt in other pieces gives (slightly) other numbers and could change
        the reply. This way a reply depends on the prompt only, not on what was asked before.
        """
        self.reused_tokens = 0
        if not 0 < prefix_len < len(ids):
            return self._forward(ids, 0, slot)
        key = tuple(ids[:prefix_len])
        row = slice(slot, slot + 1)
        if key in self.prefixes:
            keys, values = self.prefixes[key]
            self.keys[:, row, :, :prefix_len] = keys
            self.values[:, row, :, :prefix_len] = values
            self.prefixes.move_to_end(key)
            self.reused_tokens = prefix_len
        else:
            self._forward(ids[:prefix_len], 0, slot)
            if self.prefix_slots:
                self.prefixes[key] = (self.keys[:, row, :, :prefix_len].clone(),
                                      self.values[:, row, :, :prefix_len].clone())
                while len(self.prefixes) > self.prefix_slots:
                    self.prefixes.popitem(last=False)
        return self._forward(ids[prefix_len:], prefix_len, slot)

    def generate(self, ids: Sequence[int], max_new_tokens: int, should_stop: Callable[[], bool],
                 stop_ids: Sequence[int] = (), prefix_len: int = 0, repetition_penalty: float = 1.0,
                 first_ids: Sequence[int] = ()) -> Iterator[int]:
        """Yield greedy tokens after ``ids``; ``ids[:prefix_len]`` is a prefix worth keeping cached;
        ``first_ids``: the tokens the reply may start with (any when empty)."""
        import torch

        ids = list(ids)
        if not ids or len(ids) + max_new_tokens > self.max_len:
            raise ValueError(f"a prompt of {len(ids)} tokens plus {max_new_tokens} new ones does not fit the "
                             f"decoder's {self.max_len} positions")
        with torch.inference_mode():
            logits = self.prefill(ids, prefix_len)
        seen: list[int] = []
        position = len(ids)
        for _ in range(max_new_tokens):
            with torch.inference_mode():  # entered per step: a yield must not leave it on in the caller
                token = pick(logits, seen, repetition_penalty, first_ids)
            if token in stop_ids:
                return
            yield token
            if should_stop():
                return
            seen.append(token)
            with torch.inference_mode():
                logits = self._forward((token,), position)
            position += 1
