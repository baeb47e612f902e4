"""Staff endpoints (``Authorization: Bearer <SHOPDESK_STAFF_TOKEN>``): stats over a period, handoff
tickets, any session's transcript, a signed customer token to try the widget as a customer, and labels
of questions the FAQ answered or declined wrongly (knowledge_base/labels.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api_deps import ApiContext, staff_only
from app.stats import sign_customer_token
from knowledge_base.errors import IndexUnavailableError, KnowledgeBaseError
from knowledge_base.labels import MAX_TEXT


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=32)
    minutes: int = Field(30, ge=1, le=24 * 60)


class FaqLabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_TEXT, description="the shopper's question, as asked")
    answerable: bool = Field(description="true: the help centre answers it; false: it does not, so the assistant "
                                         "should say it does not know and offer a person")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """The database keeps naive UTC; an ISO time with an offset is converted."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment and moment.tzinfo else moment


def staff_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1/staff", tags=["staff"], dependencies=[staff_only(ctx)])
    clock = ctx.assistant.c.clock

    @router.get("/stats", summary="Conversations, containment, handoff and thumbs-up rates, latency, unanswered")
    def stats(days: Annotated[float, Query(gt=0, le=3660, description="the period: the last N days")] = 7.0,
              since: Annotated[datetime | None, Query(description="start (ISO, UTC); overrides days")] = None,
              until: Annotated[datetime | None, Query(description="end (ISO, UTC); default now")] = None,
              ) -> dict[str, Any]:
        end = _naive_utc(until) or clock.now()
        start = _naive_utc(since) or end - timedelta(days=days)
        if start >= end:
            raise HTTPException(422, "since must be before until")
        return ctx.staff.stats(start, end).to_dict()

    @router.get("/handoffs", summary="Handoff tickets, newest first")
    def handoffs(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"tickets": ctx.staff.handoff_tickets(limit)}

    @router.get("/sessions/{session_id}", summary="Any session's transcript (PII-masked)")
    def transcript(session_id: str) -> dict[str, Any]:
        if not ctx.assistant.c.sessions.exists(session_id):
            raise HTTPException(404, "no such session")
        return {"session_id": session_id, "turns": ctx.assistant.c.sessions.transcript(session_id)}

    @router.post("/customer-token", summary="A signed customer token, as the shop's site would make one")
    def customer_token(req: TokenRequest) -> dict[str, Any]:
        if not ctx.staff.has_customer(req.customer_id):
            raise HTTPException(404, f"no customer {req.customer_id!r}")
        token = sign_customer_token(ctx.settings, req.customer_id, clock.now(), req.minutes)
        return {"customer_token": token, "expires_in_minutes": req.minutes}

    @router.post("/faq-labels", summary="Label a question the FAQ answered or declined wrongly: the assistant "
                                        "learns it at once (as a labelled question, without refitting)")
    def faq_label(req: FaqLabelRequest) -> dict[str, Any]:
        faq = ctx.assistant.c.faq
        if faq.label_store is None:
            raise HTTPException(409, "labels join the labelled questions, which are turned off "
                                     "(SHOPDESK_RETRIEVAL_PRECEDENTS=none)")
        try:
            label, decision = faq.label(req.question, req.answerable, clock.now().isoformat(timespec="seconds"))
        except IndexUnavailableError as exc:
            raise HTTPException(503, f"the FAQ index cannot be searched: {exc}") from exc
        except KnowledgeBaseError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"label": label.to_dict(), "decision": decision}

    @router.get("/faq-labels", summary="The staff's FAQ labels, oldest first (a later one of the same question wins)")
    def faq_labels() -> dict[str, Any]:
        store = ctx.assistant.c.faq.label_store
        return {"labels": [x.to_dict() for x in store.all()] if store is not None else []}

    return router
