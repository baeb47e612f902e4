"""Shopdesk's own OpenAI-compatible model server: one model, decoding on the process's main thread.

    shopdesk model-server [--host 127.0.0.1] [--port 8001]

Several app workers on one box share it through ``SHOPDESK_GENERATOR=openai`` and
``SHOPDESK_OPENAI_BASE_URL=http://127.0.0.1:8001/v1``. Requests wait in a bounded queue (a full
queue answers 503 at once, so the app falls back to its template reply instead of waiting).

Why a process of its own: torch decodes ~40% slower from a thread that competes with another
thread's OpenMP team (measured here), and an app server answers requests from many threads. Here
the HTTP server runs in a background thread and only the main thread ever touches torch.

Endpoints: ``POST /v1/chat/completions`` (``stream`` true or false; greedy decoding; ``max_tokens``),
``GET /v1/models``, ``GET /health``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.generator import LocalGenerator

log = logging.getLogger(__name__)
_DONE = object()
MAX_BODY_BYTES = 1_000_000


@dataclass
class Job:
    messages: list[dict[str, str]]
    max_tokens: int
    out: queue.Queue[Any] = field(default_factory=queue.Queue)  # text pieces, then _DONE or an Exception
    cancelled: threading.Event = field(default_factory=threading.Event)


def _validate(body: Any) -> tuple[list[dict[str, str]], int, bool]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ValueError("body must be an object with a non-empty 'messages' list")
    messages = []
    for m in body["messages"]:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise ValueError("each message needs a role (system|user|assistant) and a string content")
        messages.append({"role": m["role"], "content": m["content"]})
    max_tokens = body.get("max_tokens", 128)
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 1024:
        raise ValueError("max_tokens must be an integer from 1 to 1024")
    return messages, max_tokens, bool(body.get("stream", False))


class ModelServer:
    def __init__(self, generator: LocalGenerator, host: str = "127.0.0.1", port: int = 8001,
                 queue_size: int = 16) -> None:
        self.generator = generator
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def serve_forever(self, ready: threading.Event | None = None) -> None:
        """Load the model, start HTTP in a thread, then decode jobs on this (the main) thread."""
        self.generator.warm_up()
        threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True).start()
        if ready:
            ready.set()
        log.info("model server on port %s", self.port)
        try:
            while True:
                job = self.jobs.get()
                if job is None:  # type: ignore[comparison-overlap]  # shutdown sentinel
                    break
                self._run(job)
        finally:
            self.httpd.shutdown()

    def stop(self) -> None:
        self.jobs.put(None)  # type: ignore[arg-type]

    def _run(self, job: Job) -> None:
        if job.cancelled.is_set():
            return
        try:
            self.generator.generate(job.messages, job.max_tokens, job.cancelled.is_set, job.out.put)
            job.out.put(_DONE)
        except Exception as exc:  # handed to the request thread, which answers 500
            log.exception("generation failed")
            job.out.put(exc)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug(fmt, *args)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._json(200, {"status": "ok", "queued": server.jobs.qsize()})
                elif self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": server.generator.name, "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._json(413, {"error": {"message": "request body too large"}})
                    return
                try:
                    messages, max_tokens, stream = _validate(json.loads(self.rfile.read(length) or b"null"))
                except (ValueError, json.JSONDecodeError) as exc:
                    self._json(400, {"error": {"message": str(exc)}})
                    return
                job = Job(messages, max_tokens)
                try:
                    server.jobs.put_nowait(job)
                except queue.Full:
                    self._json(503, {"error": {"message": "model server busy, try again"}})
                    return
                if stream:
                    self._stream(job)
                else:
                    self._complete(job)

            def _pieces(self, job: Job):  # an iterator of str
                while True:
                    item = job.out.get()
                    if item is _DONE:
                        return
                    if isinstance(item, Exception):
                        raise item
                    yield item

            def _complete(self, job: Job) -> None:
                try:
                    text = "".join(self._pieces(job))
                except Exception as exc:
                    self._json(500, {"error": {"message": f"generation failed: {exc}"}})
                    return
                self._json(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                                 "created": int(time.time()), "model": server.generator.name,
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": text}}]})

            def _stream(self, job: Job) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

                def send(delta: dict[str, Any], finish: str | None = None) -> None:
                    chunk = {"id": cid, "object": "chat.completion.chunk", "model": server.generator.name,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                try:
                    send({"role": "assistant"})
                    for piece in self._pieces(job):
                        send({"content": piece})
                    send({}, "stop")
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    job.cancelled.set()  # the client went away: stop decoding for it
                except Exception as exc:  # headers are sent: report in-band
                    self.wfile.write(f"data: {json.dumps({'error': {'message': str(exc)}})}\n\n".encode())
                self.close_connection = True

        return Handler
