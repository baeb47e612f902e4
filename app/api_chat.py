"""The shopper-facing API: a turn as JSON or as server-sent events, a session's transcript, feedback.

Sessions: the first turn (no ``session_id``, or a new one) gets a random session token, in the
``X-Session-Token`` response header and the body's ``session_token``; later turns, the transcript and
feedback need it in the ``X-Session-Token`` request header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.api_deps import ApiContext, client_address, error, rate_limit, store_unavailable
from app.errors import ShopdeskError
from app.schema import Message, Reply, Token
from app.session_access import AccessDenied

log = logging.getLogger(__name__)
SESSION_HEADER = "X-Session-Token"
TURN_FAILED = "The assistant could not answer right now. Please try again in a moment."
_SESSION_ID = r"^[A-Za-z0-9_.:-]+$"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str | None = Field(None, min_length=1, max_length=64, pattern=_SESSION_ID,
                                   description="leave out on the first turn: the reply carries a new one")
    message: str = Field(max_length=20_000, description="what the shopper wrote")
    customer_token: str | None = Field(None, max_length=512,
                                       description="signed customer token from the shop's site (signed-in shopper)")
    channel: Literal["api", "widget"] = "api"


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(min_length=1, max_length=64, pattern=_SESSION_ID)
    turn_id: int | None = Field(None, ge=1, le=2**63 - 1,  # a database integer: bigger ones cannot exist
                                description="the reply's turn_id; default: the session's latest turn")
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=1000)
    channel: Literal["api", "widget"] = "api"


SessionTokenHeader = Annotated[str | None, Header(alias=SESSION_HEADER, description="the session's token")]


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event; ``data`` is one line of JSON (JSON escapes every newline)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def sse_turn(turn: Iterator[Token | Reply], is_disconnected: Callable[[], Awaitable[bool]],
                   gone: threading.Event, on_reply: Callable[[Reply], None], on_disconnect: Callable[[], None],
                   on_error: Callable[[], None], poll_s: float = 0.05) -> AsyncIterator[str]:
    """Token events, then the Reply event. Once the client has gone, ``gone`` is set (the turn's model
    stops within one token: the turn was started with ``cancelled=gone.is_set``) and nothing more is
    pulled or sent. The client is watched while the turn works in its thread, not only between events:
    the model's text is generated before the first token event."""
    finished = False

    def leave() -> None:
        if not gone.is_set():
            gone.set()
            on_disconnect()

    try:
        while True:
            if await is_disconnected():
                leave()
                return
            step = asyncio.ensure_future(run_in_threadpool(next, turn, None))
            while not step.done():
                await asyncio.wait((step,), timeout=poll_s)
                if not step.done() and not gone.is_set() and await is_disconnected():
                    leave()
            event = step.result()
            if event is None:
                finished = True
                return
            if gone.is_set():
                return
            if isinstance(event, Token):
                yield sse("token", {"text": event.text})
            else:
                on_reply(event)
                finished = True
                yield sse("reply", event.to_dict())
    except Exception:  # the edge: log it, tell the shopper in plain words, never a traceback
        log.exception("streamed turn failed")
        finished = True
        on_error()
        yield sse("error", {"error": TURN_FAILED})
    finally:  # also when the server cancels this stream because it saw the client go first
        if not finished:
            leave()
        with contextlib.suppress(ValueError):  # still running in the worker thread: ends at its next yield
            turn.close()  # type: ignore[attr-defined]


def chat_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["chat"], dependencies=[rate_limit(ctx)])
    assistant = ctx.assistant

    def start(req: ChatRequest, request: Request, token: str | None) -> tuple[Message, str | None]:
        try:
            session_id, new_token = ctx.access.open(req.session_id, token, assistant.c.clock.now())
        except AccessDenied as exc:
            ctx.metrics.error("session_denied")
            raise HTTPException(403, str(exc)) from exc
        message = Message(session_id, req.message, channel=req.channel, client_id=client_address(request),
                          customer_token=req.customer_token or None)
        return message, new_token

    @router.post("/chat", summary="One turn; the whole Reply as JSON")
    def chat(req: ChatRequest, request: Request, x_session_token: SessionTokenHeader = None) -> JSONResponse:
        message, new_token = start(req, request, x_session_token)
        try:
            reply = assistant.respond(message)
        except (ShopdeskError, SQLAlchemyError):
            log.exception("turn failed (session %s)", message.session_id)
            ctx.metrics.error("turn_failed")
            return error(503, TURN_FAILED)
        if reply.route == "unavailable":  # the database stayed down through the retries: retryable
            return store_unavailable(ctx.metrics)
        ctx.metrics.observe(reply, message.channel)
        headers = {SESSION_HEADER: new_token} if new_token else None
        return JSONResponse({**reply.to_dict(), "session_token": new_token}, headers=headers)

    @router.post("/chat/stream", summary="One turn as server-sent events: session, token..., reply (or error)",
                 response_class=StreamingResponse)
    async def chat_stream(req: ChatRequest, request: Request,
                          x_session_token: SessionTokenHeader = None) -> StreamingResponse:
        message, new_token = await run_in_threadpool(start, req, request, x_session_token)
        gone = threading.Event()  # set once the client has gone: the model stops within one token
        turn = assistant.stream(message, cancelled=gone.is_set)

        async def events() -> AsyncIterator[str]:
            yield sse("session", {"session_id": message.session_id, "session_token": new_token})
            async for chunk in sse_turn(turn, request.is_disconnected, gone,
                                        on_reply=lambda r: ctx.metrics.observe(r, message.channel),
                                        on_disconnect=ctx.metrics.disconnects.inc,
                                        on_error=lambda: ctx.metrics.error("turn_failed")):
                yield chunk

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer the stream
        if new_token:
            headers[SESSION_HEADER] = new_token
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @router.get("/sessions/{session_id}", summary="A session's transcript (PII-masked), for its token holder")
    def transcript(session_id: str, x_session_token: SessionTokenHeader = None) -> dict[str, Any]:
        if not x_session_token:
            raise HTTPException(401, f"send the session's token in the {SESSION_HEADER} header")
        if not ctx.access.holds(session_id, x_session_token):
            raise HTTPException(404, "no such session, or the session token does not match it")
        return {"session_id": session_id, "turns": assistant.c.sessions.transcript(session_id)}

    @router.post("/feedback", summary="Thumbs up or down (and an optional comment) on a turn")
    def feedback(req: FeedbackRequest, x_session_token: SessionTokenHeader = None) -> dict[str, Any]:
        if not ctx.access.holds(req.session_id, x_session_token):
            raise HTTPException(404, "no such session, or the session token does not match it")
        sessions = assistant.c.sessions
        turn_id = sessions.turn_of(req.session_id, req.turn_id)
        if turn_id is None:
            raise HTTPException(404, "this session has no such turn")
        rating = 1 if req.rating == "up" else -1
        sessions.save_feedback(req.session_id, turn_id, rating, req.comment, req.channel, assistant.c.clock.now())
        ctx.metrics.feedback.labels(req.rating).inc()
        return {"ok": True, "turn_id": turn_id, "rating": req.rating}

    return router
