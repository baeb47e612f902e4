"""llama.cpp (llama-cpp-python) on the bench's job, in a process of its own:
``python -m evals.bench_llama_cpp GGUF PROMPT REPLY REPEATS THREADS``.

Prints one line of JSON: the best time for a PROMPT-token prompt and a REPLY-token reply, prefill and
decode split. Run as a child process by ``evals.bench_decode.llama_cpp_reply_s``.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    from llama_cpp import Llama

    path, prompt_tokens, reply_tokens, repeats, threads = argv[0], *map(int, argv[1:5])
    llm = Llama(model_path=path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    tokens = llm.tokenize(b" ".join([b"shipping returns orders"] * prompt_tokens))[:prompt_tokens]
    best_total, best_first = float("inf"), float("inf")
    for _ in range(repeats):
        llm.reset()
        started = time.perf_counter()
        first = 0.0
        for i, _token in enumerate(llm.generate(tokens, temp=0.0)):
            if i == 0:
                first = time.perf_counter() - started
            if i + 1 >= reply_tokens:
                break
        total = time.perf_counter() - started
        if total < best_total:
            best_total, best_first = total, first
    print(json.dumps({"reply_400_60_s": round(best_total, 3), "prefill_s": round(best_first, 3),
                      "decode_tok_s": round((reply_tokens - 1) / max(best_total - best_first, 1e-9), 1),
                      "threads": threads, "prompt_tokens": len(tokens), "reply_tokens": reply_tokens}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
