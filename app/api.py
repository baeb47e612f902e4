"""The web app: the shopper widget and demo shop page, the HTTP API, metrics, and the Gradio staff
demo at /demo, all thin layers over one ``Assistant``.

    /                       demo shop page with the chat widget (app/widget/index.html)
    /widget/widget.js       the widget: one <script> tag on any page (plus widget.css)
    /api/v1/chat, /chat/stream, /sessions/{id}, /feedback      shopper API (app/api_chat.py)
    /api/v1/staff/...       staff API behind SHOPDESK_STAFF_TOKEN (app/api_staff.py)
    /healthz, /readyz, /metrics, /docs (OpenAPI, served without a CDN), /demo (staff demo)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api_chat import SESSION_HEADER, chat_router
from app.api_deps import ApiContext, install_error_handlers
from app.api_staff import staff_router
from app.body_limit import BodySizeLimit
from app.config import Settings, load_settings
from app.factory import Mode, build_assistant
from app.metrics import CONTENT_TYPE, Metrics
from app.orchestrator import Assistant
from app.ratelimit import RateLimiter
from app.session_access import SessionAccess
from app.stats import StaffQueries

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
log = logging.getLogger(__name__)
WIDGET_DIR = Path(__file__).parent / "widget"
# `shopdesk serve --workers N` hands its options to each worker process here (JSON: config, overrides,
# fake_models): uvicorn starts workers from an import string, so they cannot receive Python objects
WORKER_OPTIONS_ENV = "SHOPDESK_SERVE_OPTIONS"
WORKER_HEADER = "X-Shopdesk-Worker"


def allowed_origins(settings: Settings) -> list[str]:
    return [o.strip().rstrip("/") for o in settings.allowed_origins.split(",") if o.strip()]


def create_app(settings: Settings, mode: Mode = Mode(), warm: bool = True,
               assistant: Assistant | None = None) -> Any:
    import gradio as gr

    from app.ui import build_ui

    assistant = assistant or build_assistant(settings, mode=mode)
    started = time.perf_counter()
    if warm:
        assistant.warm_up()
    warm_s = time.perf_counter() - started
    engine = assistant.c.sessions.engine
    metrics = Metrics()
    ctx = ApiContext(settings=settings, assistant=assistant, metrics=metrics,
                     limiter=RateLimiter(settings.rate_limit_per_minute),
                     access=SessionAccess(engine, assistant.c.sessions), staff=StaffQueries(engine))

    app = FastAPIOffline(
        title="Shopdesk", version="0.1.0",
        description="Customer-service assistant API. Shopper endpoints take the session token issued on a "
                    f"session's first turn in the `{SESSION_HEADER}` header; staff endpoints take "
                    "`Authorization: Bearer <SHOPDESK_STAFF_TOKEN>`. Errors are JSON: `{\"error\": \"...\"}`.")
    install_error_handlers(app, metrics)
    app.add_middleware(WorkerId, worker_id=secrets.token_hex(4))
    # last added runs first: CORS outermost, so 413 and 429 answers carry CORS headers too
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes,
                       on_refuse=lambda: metrics.error("too_large"))
    origins = allowed_origins(settings)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", SESSION_HEADER, "Authorization"],
                           expose_headers=[SESSION_HEADER], max_age=600)

    @app.get("/", include_in_schema=False)
    def shop_page() -> FileResponse:
        return FileResponse(WIDGET_DIR / "index.html", media_type="text/html")

    @app.get("/demo", include_in_schema=False)
    def demo_slash() -> RedirectResponse:
        return RedirectResponse("/demo/")

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Models warmed up and the database answers")
    def readyz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.exception("readiness: database unreachable")
            return JSONResponse({"status": "not_ready", "error": "the database is not reachable"}, 503)
        return JSONResponse({"status": "ready", "warm_up_s": round(warm_s, 2)})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (text format)")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(chat_router(ctx))
    app.include_router(staff_router(ctx))
    app.mount("/widget", StaticFiles(directory=WIDGET_DIR), name="widget")
    auth = ("staff", settings.staff_token) if settings.staff_token else None
    return gr.mount_gradio_app(app, build_ui(assistant, metrics), path="/demo", auth=auth,
                               auth_message="Shopdesk staff demo: user `staff`, password the staff token")


class WorkerId:
    """Names the worker process that answered (an opaque random id, not its pid) in every response,
    so a load test can show that a session's turns landed on several workers and still worked."""

    def __init__(self, app: Any, worker_id: str) -> None:
        self.app, self.header = app, (WORKER_HEADER.lower().encode(), worker_id.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)


def worker_options(config: str | None, overrides: dict[str, Any], fake_models: bool) -> str:
    """What `shopdesk serve --workers N` puts in ``WORKER_OPTIONS_ENV`` for ``worker_app``."""
    return json.dumps({"config": config, "overrides": overrides, "fake_models": fake_models})


def worker_app() -> Any:
    """The app of one worker process of `shopdesk serve --workers N` (a uvicorn factory). Each worker
    builds its own Assistant; sessions, turns and writes live in the database they all share."""
    from app import logs

    logs.configure(logging.WARNING)  # a spawned worker starts with bare logging: mask personal data here too
    raw = os.environ.get(WORKER_OPTIONS_ENV)
    if not raw:
        raise RuntimeError(f"{WORKER_OPTIONS_ENV} is not set: start workers with `shopdesk serve --workers N`")
    opts = json.loads(raw)
    settings = load_settings(opts.get("config"), **opts.get("overrides", {}))
    return create_app(settings, Mode(fake_models=bool(opts.get("fake_models"))))
