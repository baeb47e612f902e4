"""The load test's shoppers, all at once: each session is a coroutine that talks to the HTTP chat API
(``POST /api/v1/chat`` with its session token) turn by turn, following its plan (``app.loadtest_shop``)
and answering what the assistant asks. By default every turn goes out on a new connection, as from a
load balancer that spreads requests over the workers: the kernel hands each to any worker process, so
a session's turns land on several (every response names its worker, ``X-Shopdesk-Worker``).

Bounded: a session stops at its turn count, and no new turn starts after the deadline (a turn already
sent gets its own request timeout). Every turn is recorded: status, latency, route, the facts kind,
the worker, and for returns and handoffs the RMA or ticket ids the reply announced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.api import WORKER_HEADER
from app.api_chat import SESSION_HEADER
from app.loadtest_shop import Shopper, plan, return_reply, says
from app.pii import mask

CHAT_PATH = "/api/v1/chat"
MAX_RETURN_TURNS = 7  # the return flow's turns at most (verification, items, reason, condition, summary, yes)
EXPECTED_ROUTE = {"greet": "smalltalk", "thanks": "smalltalk", "faq": "faq", "track": "order_status",
                  "status": "order_status", "return": "returns", "handoff": "human_handoff"}


@dataclass
class TurnRecord:
    segment: str
    status: int  # HTTP status; 0 when no response came (timeout, connection dropped)
    latency_s: float
    route: str = ""
    kind: str = ""  # the reply's facts kind
    worker: str = ""
    error: str = ""  # "" for a 200 reply, else e.g. http_503, timeout, transport_ReadError
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SessionRecord:
    shopper: Shopper
    plan: tuple[str, ...]
    double_yes: bool
    session_id: str = ""
    token: str = ""
    turns: list[TurnRecord] = field(default_factory=list)
    rmas: list[str] = field(default_factory=list)  # RMA ids the replies announced (create_return)
    tickets: list[str] = field(default_factory=list)  # handoff tickets the replies announced
    return_done: bool = False
    unexpected: list[dict[str, str]] = field(default_factory=list)
    stopped: str = ""  # why it ended before its turn count: deadline | no_session
    # a double click: the two replies' kinds, e.g. "return_created+return_created" (both reached the write:
    # one row, one RMA) or "ack+return_created" (the second came after the flow had ended)
    double_outcome: str = ""

    @property
    def sent(self) -> int:
        return len(self.turns)

    @property
    def acknowledged(self) -> int:
        return sum(1 for t in self.turns if t.status == 200)


class Driver:
    def __init__(self, url: str, shoppers: list[Shopper], turns: int, deadline: float, request_timeout_s: float,
                 double_yes_every: int = 4, on_turn: Callable[[], None] = lambda: None,
                 keepalive: bool = False) -> None:
        self.url = url.rstrip("/")
        self.sessions = [SessionRecord(sh, plan(sh.index, turns, self._double(sh.index, double_yes_every)),
                                       self._double(sh.index, double_yes_every)) for sh in shoppers]
        self.turns = turns
        self.deadline = deadline  # time.monotonic() after which no new turn starts
        self.request_timeout_s = request_timeout_s
        self.on_turn = on_turn
        self.keepalive = keepalive  # False: a new connection per turn (spread over the workers)

    @staticmethod
    def _double(index: int, every: int) -> bool:
        """One session in ``every`` sends its confirmation twice at once (a double click)."""
        return every > 0 and index % every == every // 2

    async def run(self) -> list[SessionRecord]:
        n = max(1, len(self.sessions))
        limits = httpx.Limits(max_connections=2 * n, max_keepalive_connections=2 * n if self.keepalive else 0)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=self.request_timeout_s,
                                     trust_env=False) as client:
            await asyncio.gather(*(self._session(client, rec) for rec in self.sessions))
        return self.sessions

    async def _session(self, client: httpx.AsyncClient, rec: SessionRecord) -> None:
        for k, segment in enumerate(rec.plan):
            if rec.sent >= self.turns or rec.stopped:
                return
            if segment == "return":
                await self._return(client, rec)
            elif segment in ("status", "handoff"):
                await self._two_step(client, rec, segment)
            else:
                await self._turn(client, rec, segment, says(segment, rec.shopper, rec.shopper.index + k))
        while rec.sent < self.turns and not rec.stopped:  # a flow that took fewer turns than planned
            await self._turn(client, rec, "faq", says("faq", rec.shopper, rec.sent))

    async def _two_step(self, client: httpx.AsyncClient, rec: SessionRecord, segment: str) -> None:
        """Order status (asks for the email unless the session is verified) or a handoff (offer, then yes)."""
        first = await self._turn(client, rec, segment, says(segment, rec.shopper, 0))
        if first is None or first.error:
            return
        if segment == "status" and first.kind == "ask_verification":
            await self._turn(client, rec, segment, rec.shopper.email, expect_kind="order_status")
        elif segment == "handoff" and first.kind == "handoff_offer":
            done = await self._turn(client, rec, segment, "yes", expect_kind="handoff_opened")
            rec.tickets += [a["open_handoff_ticket"]["ticket"] for a in (done.actions if done else [])
                            if "open_handoff_ticket" in a]
        elif first.kind not in ("order_status", "handoff_opened"):
            self._unexpected(rec, first, segment, "a question it answers")

    async def _return(self, client: httpx.AsyncClient, rec: SessionRecord) -> None:
        """The return flow to its summary, then "yes" (twice at once for a double-clicking session)."""
        reply = await self._turn(client, rec, "return", says("return", rec.shopper, 0))
        for _ in range(MAX_RETURN_TURNS):
            if reply is None or reply.error:
                return
            if reply.kind == "return_created":
                break
            answer = return_reply(reply.kind, rec.shopper)
            if answer is None:
                self._unexpected(rec, reply, "return", "the next step of the return flow")
                return
            if reply.kind == "return_summary" and rec.double_yes and self.turns - rec.sent >= 2:
                # either may come second and find the flow already ended: no route expected of either
                both = await asyncio.gather(self._turn(client, rec, "return", answer, check_route=False),
                                            self._turn(client, rec, "return", answer, check_route=False))
                self._announced(rec, [t for t in both if t is not None])
                created = [t for t in both if t is not None and t.kind == "return_created"]
                rec.double_outcome = "+".join(sorted(t.kind or t.error for t in both if t is not None))
                for t in both:  # the other click must not tell the shopper the return failed
                    if t is not None and not t.error and (not created or t.kind == "flow_write_failed"):
                        self._unexpected(rec, t, "return", "return_created, or a reply after the flow ended")
                rec.return_done = bool(created)
                return
            reply = await self._turn(client, rec, "return", answer)
        if reply is not None and reply.kind == "return_created":
            self._announced(rec, [reply])
            rec.return_done = True

    @staticmethod
    def _announced(rec: SessionRecord, turns: list[TurnRecord]) -> None:
        rec.rmas += [a["create_return"]["rma"] for t in turns for a in t.actions if "create_return" in a]

    async def _turn(self, client: httpx.AsyncClient, rec: SessionRecord, segment: str, message: str,
                    expect_kind: str = "", check_route: bool = True) -> TurnRecord | None:
        """One request; None when the session's turns or the run's time are used up."""
        if rec.sent >= self.turns:
            return None
        if time.monotonic() >= self.deadline:
            rec.stopped = "deadline"
            return None
        if rec.turns and not rec.session_id:  # the first turn failed: there is no session to continue
            rec.stopped = "no_session"
            return None
        body: dict[str, Any] = {"message": message}
        headers = {}
        if rec.session_id:
            body["session_id"] = rec.session_id
            headers[SESSION_HEADER] = rec.token
        started = time.perf_counter()
        turn = TurnRecord(segment, 0, 0.0)
        rec.turns.append(turn)  # counted as sent now: a double "yes" checks the budget before the first returns
        try:
            resp = await client.post(CHAT_PATH, json=body, headers=headers)
            turn.status, turn.worker = resp.status_code, resp.headers.get(WORKER_HEADER, "")
            if resp.status_code == 200:
                data = resp.json()
                turn.route, turn.kind, turn.actions = data.get("route", ""), data.get("facts_kind", ""), \
                    list(data.get("actions") or [])
                if not rec.session_id:
                    rec.session_id, rec.token = data["session_id"], data.get("session_token") or ""
            else:
                turn.error = f"http_{resp.status_code}"
        except httpx.TimeoutException:
            turn.error = "timeout"
        except httpx.HTTPError as exc:
            turn.error = f"transport_{type(exc).__name__}"
        turn.latency_s = time.perf_counter() - started
        self.on_turn()
        if not turn.error and check_route:
            if turn.route != EXPECTED_ROUTE[segment]:
                self._unexpected(rec, turn, segment, f"route {EXPECTED_ROUTE[segment]}", message)
            elif expect_kind and turn.kind != expect_kind:
                self._unexpected(rec, turn, segment, expect_kind, message)
        return turn

    @staticmethod
    def _unexpected(rec: SessionRecord, turn: TurnRecord, segment: str, expected: str, message: str = "") -> None:
        rec.unexpected.append({"session": rec.session_id, "segment": segment, "message": mask(message),
                               "expected": expected, "route": turn.route, "kind": turn.kind})
