"""The web app: FastAPI with the chat API, health checks, and the Gradio staff demo at /demo.

Issue 8 adds the widget, SSE streaming, feedback, metrics, CORS and rate limits here.
"""

from __future__ import annotations

import logging
import os
import time

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from app.config import Settings
from app.errors import ShopdeskError
from app.factory import Mode, build_assistant
from app.schema import Message

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
log = logging.getLogger(__name__)


class ChatRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=20_000)


def create_app(settings: Settings, mode: Mode = Mode(), warm: bool = True) -> FastAPI:
    import gradio as gr

    from app.ui import build_ui

    assistant = build_assistant(settings, mode=mode)
    started = time.perf_counter()
    if warm:
        assistant.warm_up()
    warm_s = time.perf_counter() - started
    app = FastAPI(title="Shopdesk", version="0.1.0")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/demo/")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, object]:
        return {"status": "ready", "warm_up_s": round(warm_s, 2)}

    @app.post("/api/v1/chat")
    def chat(req: ChatRequest) -> JSONResponse:
        try:
            reply = assistant.respond(Message(req.session_id, req.message, channel="api"))
        except ShopdeskError:
            log.exception("turn failed")
            return JSONResponse({"error": "The assistant could not answer right now. Please try again."}, 503)
        return JSONResponse(reply.to_dict())

    return gr.mount_gradio_app(app, build_ui(assistant), path="/demo")
