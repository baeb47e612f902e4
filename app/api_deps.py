"""What the API's routes share: the app context, the client's address, the rate limit, staff auth,
and the one JSON error shape (``{"error": "what is wrong and what to do"}``, never a traceback)."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import templates
from app.config import Settings
from app.errors import StoreUnavailableError
from app.metrics import Metrics
from app.orchestrator import Assistant
from app.ratelimit import RateLimiter, retry_after
from app.session_access import SessionAccess
from app.stats import StaffQueries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    assistant: Assistant
    metrics: Metrics
    limiter: RateLimiter
    access: SessionAccess
    staff: StaffQueries


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def client_address(request: Request) -> str:
    """The peer address. Behind a reverse proxy run uvicorn with --proxy-headers so this is the shopper's."""
    return request.client.host if request.client else "unknown"


def rate_limit(ctx: ApiContext):
    def dependency(request: Request) -> None:
        wait = ctx.limiter.hit(client_address(request))
        if wait:
            ctx.metrics.error("rate_limited")
            raise HTTPException(429, f"too many requests from your address: try again in {retry_after(wait)} s",
                                headers={"Retry-After": str(retry_after(wait))})
    return Depends(dependency)


UNAVAILABLE_RETRY_AFTER_S = "5"  # a hint to API clients; the database retries themselves are settings
_bearer = HTTPBearer(auto_error=False, description="the staff token (SHOPDESK_STAFF_TOKEN)")


def staff_only(ctx: ApiContext):
    def dependency(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:  # noqa: B008
        expected = ctx.settings.staff_token
        if not expected:
            raise HTTPException(503, "the staff API is off: set SHOPDESK_STAFF_TOKEN and restart")
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
            ctx.metrics.error("staff_auth")
            raise HTTPException(401, "staff endpoints need `Authorization: Bearer <SHOPDESK_STAFF_TOKEN>`",
                                headers={"WWW-Authenticate": "Bearer"})
    return Depends(dependency)


def store_unavailable(metrics: Metrics) -> JSONResponse:
    """The database stayed locked or down through the retries (app/retry.py): 503, and the text the widget
    shows. Nothing of the request was stored, so sending it again is safe."""
    metrics.error("store_unavailable")
    return error(503, templates.STORE_UNAVAILABLE, headers={"Retry-After": UNAVAILABLE_RETRY_AFTER_S})


def install_error_handlers(app: Any, metrics: Metrics) -> None:
    """Every error is JSON with a clear message; unexpected ones are logged, never shown."""

    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            metrics.error("too_large")
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        bad_json = next((p for p in problems if p.get("type") == "json_invalid"), None)
        if bad_json is not None:
            metrics.error("bad_json")
            where = bad_json.get("ctx", {}).get("error", "")
            return error(400, f"the request body is not valid JSON ({where}); send a JSON object, "
                              'e.g. {"message": "where is my order?"}')
        metrics.error("invalid_request")
        details = [{"field": ".".join(str(x) for x in p.get("loc", ()) if x != "body"), "problem": p.get("msg", "")}
                   for p in problems]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details)
        return error(422, f"the request does not match the API: {summary}", details=details)

    async def unavailable(_request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("request not served: %s", exc)
        return store_unavailable(metrics)

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        metrics.error("internal")
        return error(500, "something went wrong on our side; please try again")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StoreUnavailableError, unavailable)
    app.add_exception_handler(Exception, unexpected)
