"""The orchestrator: the only place where the stages of a turn meet (design.md section 1).

load session -> classify + entities -> route -> handler (facts, new state) -> generate (time budget)
-> guard (else template) -> persist session and turn -> stream text, then the final Reply.

No stage calls back up the flow; handlers return values and only this module saves the session.
If the model fails or is slow, the shopper still gets the template reply for the same facts.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from app import smalltalk, templates
from app.cancel import CancelHandler
from app.cards import order_card
from app.clock import Clock
from app.config import Settings
from app.errors import GeneratorBusy, ModelError, StoreUnavailableError
from app.faq import FaqHandler
from app.generator import Generator
from app.guard import Guard
from app.handoff import HandoffHandler
from app.orders import OrderStatusHandler
from app.prompts import build_messages, compose, reply_complete
from app.refunds import RefundStatusHandler
from app.retry import describe, is_transient
from app.returns import ReturnsHandler
from app.router import ACTION_FLOWS, CLARIFY, FLOW_OWNERS, Router
from app.schema import Entities, Facts, HandlerResult, Message, Prediction, Reply, Route, SessionState, Token, Verdict
from app.session import SessionRepository
from app.text import visible_text
from app.timebox import Deadline, GenerationCancelled, GenerationTimeout, generate_within
from intents.classifier import IntentClassifier
from intents.entities import EntityExtractor

log = logging.getLogger(__name__)

@dataclass
class Components:
    settings: Settings
    classifier: IntentClassifier
    extractor: EntityExtractor
    router: Router
    orders: OrderStatusHandler
    faq: FaqHandler
    handoff: HandoffHandler
    returns: ReturnsHandler
    refunds: RefundStatusHandler
    cancel: CancelHandler
    generator: Generator
    guard: Guard
    sessions: SessionRepository
    clock: Clock


class Assistant:
    def __init__(self, components: Components) -> None:
        self.c = components
        self.settings = components.settings

    def warm_up(self) -> None:
        """Load the models now (server start) instead of on the first shopper's turn."""
        self.c.classifier.classify("hello")
        self.c.faq.warm_up()
        self.c.generator.warm_up()

    def respond(self, message: Message) -> Reply:
        """One turn, returning only the final Reply."""
        reply = None
        for event in self.stream(message):
            if isinstance(event, Reply):
                reply = event
        assert reply is not None
        return reply

    def stream(self, message: Message, cancelled: Callable[[], bool] = lambda: False) -> Iterator[Token | Reply]:
        """One turn: yields Tokens of the reply text, then the final Reply (already persisted).

        ``cancelled()`` turning true (the stream's client went away) stops the model within one token;
        the turn still ends with the template reply and is stored, so nothing the shopper said is lost.

        If the database stays unavailable through the retries (app/retry.py), the shopper is told to
        send the message again: nothing of the turn was stored, and every write is idempotent.
        """
        try:
            yield from self._stream(message, cancelled)
        except (StoreUnavailableError, SQLAlchemyError) as exc:
            if isinstance(exc, SQLAlchemyError) and not is_transient(exc):
                raise
            log.warning("turn of session %s not answered: database unavailable (%s)", message.session_id,
                        describe(exc))
            text = templates.STORE_UNAVAILABLE
            yield Token(text)
            yield Reply(session_id=message.session_id, text=text, intent="none", confidence=0.0, route="unavailable",
                        facts_kind="store_unavailable", at=self.c.clock.now())

    def _stream(self, message: Message, cancelled: Callable[[], bool]) -> Iterator[Token | Reply]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        now = self.c.clock.now()
        text = visible_text(message.text)

        t = time.perf_counter()
        state = self.c.sessions.load(message.session_id)
        state, expired = self._expire(state, now)
        timings["session"] = time.perf_counter() - t

        early = self._check_input(text)
        if early is not None:
            reply = Reply(session_id=message.session_id, text=early, intent="none", confidence=0.0,
                          route="invalid_input", verified=state.verified, timings=timings, at=now)
            yield Token(early)
            yield reply
            return

        t = time.perf_counter()
        prediction = self.c.classifier.classify(text)
        entities = self.c.extractor.extract(text)
        timings["classify"] = time.perf_counter() - t

        t = time.perf_counter()
        route = self.c.router.decide(text, prediction, entities, state)
        timings["route"] = time.perf_counter() - t

        t = time.perf_counter()
        result = self._handle(route, prediction, entities, text, state, message, now)
        timings["handler"] = time.perf_counter() - t

        facts = result.facts
        t = time.perf_counter()
        reply_text, generated_by, verdict = self._write(facts, text, state, cancelled)
        timings["generate"] = time.perf_counter() - t

        resume_line = self._resume_line(state, result.state, route)
        extra = [templates.citation(facts.passages) if facts.kind == "faq_answer" else "", resume_line]
        reply_text = "\n\n".join([e for e in (expired, reply_text, *extra) if e])
        new_state = self._next_state(state, result.state, route, text, reply_text, now)
        timings["total"] = time.perf_counter() - started

        reply = Reply(
            session_id=message.session_id, text=reply_text, intent=prediction.intent,
            confidence=round(prediction.confidence, 4), route=route.name,
            sources=tuple(dict.fromkeys(p.doc_id for p in facts.passages)) if facts.kind == "faq_answer" else (),
            actions=facts.actions, verified=new_state.verified, handoff=facts.handoff,
            choices=facts.choices, passages=facts.passages, entities=entities,
            route_reason=route.reason, facts_kind=facts.kind, generated_by=generated_by, guard=verdict,
            timings={k: round(v, 4) for k, v in timings.items()}, at=now, card=order_card(facts),
            answerability=facts.answerability,
        )
        t = time.perf_counter()
        turn_id = self.c.sessions.save_turn(new_state, text, reply, now)
        reply.timings["persist"] = round(time.perf_counter() - t, 4)
        reply = dataclasses.replace(reply, turn_id=turn_id)
        for piece in re.findall(r"\S+\s*", reply_text):
            yield Token(piece)
        yield reply

    # ---- stages -------------------------------------------------------------------------------
    def _check_input(self, text: str) -> str | None:
        if not text:
            return templates.EMPTY_MESSAGE
        if len(text) > self.settings.max_message_chars:
            return templates.TOO_LONG.format(length=len(text), limit=self.settings.max_message_chars)
        return None

    def _handle(self, route: Route, prediction: Prediction, entities: Entities, text: str,
                state: SessionState, message: Message, now: datetime) -> HandlerResult:
        shop = self.settings.shop_name
        if route.name == "order_status":
            return self.c.orders.handle(state, entities, message.client_id, now, text=text,
                                        customer_token=message.customer_token)
        if route.name == "faq":
            return HandlerResult(self.c.faq.handle(text), state)
        if route.name == "human_handoff":
            return self.c.handoff.handle(text, state, now)
        if route.name == "returns":
            flow = state.flow.name if state.flow is not None else ""
            if flow == "refund_status" or (flow not in ("return", "exchange")
                                           and route.intent == "returns.refund_status"):
                return self.c.refunds.handle(text, entities, state, message.client_id, now, message.customer_token)
            return self.c.returns.handle(route.intent, text, entities, state, message.client_id, now,
                                         message.customer_token)
        if route.name == "cancel_order":
            return self.c.cancel.handle(text, entities, state, message.client_id, now, message.customer_token)
        if route.name == CLARIFY:
            return HandlerResult(smalltalk.clarify(route.choices), state)
        if route.name == "smalltalk":
            return HandlerResult(smalltalk.smalltalk(route.intent, shop), state)
        return HandlerResult(smalltalk.out_of_scope(shop), state)

    def _write(self, facts: Facts, text: str, state: SessionState,
               cancelled: Callable[[], bool] = lambda: False) -> tuple[str, str, Verdict]:
        """The model's phrasing if it arrives in time and passes the guard, else the template."""
        template = templates.render(facts)
        generator = self.c.generator
        if not (facts.use_model and generator.uses_model):
            return template, "template", Verdict(True)
        messages = build_messages(facts, text, state.history, self.settings.shop_name, self.settings.history_turns)
        deadline = Deadline(self.settings.generation_time_budget_s)
        try:
            # an opener (app/prompts.py) is the model's first sentence followed by the template's facts
            model_text = generate_within(generator, messages, self.settings.max_new_tokens, deadline, cancelled,
                                         complete=lambda so_far: reply_complete(messages, so_far))
            candidate = compose(facts, model_text, template)
        except GenerationCancelled:
            return template, "template", Verdict(False, ("cancelled",))
        except GeneratorBusy:  # the model's queue is full: answer now rather than after the whole budget
            return template, "template", Verdict(False, ("busy",))
        except GenerationTimeout:
            return template, "template", Verdict(False, ("timeout",))
        except (ModelError, RuntimeError, OSError, ValueError):
            log.exception("generator failed; using the template reply")
            return template, "template", Verdict(False, ("model_error",))
        verdict = self.c.guard.check(candidate, facts, text)
        if not verdict.accepted:
            log.info("guard rejected model reply (%s): %s", ", ".join(verdict.reasons), facts.kind)
            return template, "template", verdict
        return candidate, generator.name, verdict

    def _next_state(self, before: SessionState, after: SessionState, route: Route, text: str,
                    reply_text: str, now: datetime) -> SessionState:
        unclear = before.unclear_turns + 1 if route.name == CLARIFY else 0
        history = ((*after.history, ("user", text), ("assistant", reply_text)))[-2 * self.settings.history_turns:]
        flow = after.flow and dataclasses.replace(after.flow, updated_at=now.isoformat())  # a live flow does not expire
        return dataclasses.replace(after, unclear_turns=unclear, history=history, flow=flow)

    @staticmethod
    def _resume_line(before: SessionState, after: SessionState, route: Route) -> str:
        """After a digression inside an active flow, offer to resume it."""
        flow = after.flow
        if flow is None or before.flow is None or flow != before.flow:
            return ""
        owner = FLOW_OWNERS.get(flow.name)
        return templates.resume(flow) if owner and owner != route.name else ""

    def _expire(self, state: SessionState, now: datetime) -> tuple[SessionState, str]:
        """A return, exchange or cancellation left without a reply for too long is stopped (nothing written)."""
        flow = state.flow
        if flow is None or flow.name not in ACTION_FLOWS:
            return state, ""
        try:
            last = datetime.fromisoformat(flow.updated_at or flow.started_at)
        except ValueError:
            last = now
        minutes = self.settings.flow_timeout_minutes
        if (now - last).total_seconds() <= minutes * 60:
            return state, ""
        notice = templates.FLOW_EXPIRED.format(task=templates.TASKS[flow.name], minutes=minutes)
        return dataclasses.replace(state, flow=None), notice
