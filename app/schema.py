"""The typed values that pass between stages of a turn. All frozen; no stage mutates another's output.

Message -> Prediction + Entities -> Route -> HandlerResult(Facts, SessionState) -> text -> Verdict -> Reply
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from intents.classifier import Prediction
from intents.entities import Entities

__all__ = [
    "Action",
    "Entities",
    "Facts",
    "Flow",
    "HandlerResult",
    "Message",
    "Passage",
    "Prediction",
    "Reply",
    "Route",
    "SessionState",
    "Token",
    "Verdict",
]


@dataclass(frozen=True)
class Message:
    session_id: str
    text: str
    channel: str = "api"  # api | widget | demo | cli | eval
    client_id: str = "local"  # client address (for lockout per client)
    customer_token: str | None = None  # signed customer token from the shop's site


@dataclass(frozen=True)
class Route:
    name: str  # one of intents.labels.ROUTES, or "clarify"
    intent: str
    confidence: float
    reason: str  # why the router chose it (shown in the staff panel)
    choices: tuple[str, ...] = ()  # for clarify: the routes offered


@dataclass(frozen=True)
class Passage:
    doc_id: str
    title: str
    url: str
    section: str
    text: str
    score: float


@dataclass(frozen=True)
class Action:
    """A write the handler performed (after the shopper's explicit yes)."""

    name: str  # create_return | create_exchange | cancel_order | open_handoff_ticket
    args: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {self.name: dict(self.args)}


@dataclass(frozen=True)
class Facts:
    """What a handler established, for the generator to phrase and the guard to check.

    ``kind`` selects the template and the prompt. ``must_say`` are strings the reply must contain
    verbatim (order id, status, tracking number). ``allowed`` are extra values the reply may mention.
    """

    kind: str
    route: str
    data: dict[str, Any] = field(default_factory=dict)
    must_say: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    passages: tuple[Passage, ...] = ()
    actions: tuple[Action, ...] = ()
    choices: tuple[str, ...] = ()  # quick replies offered to the shopper
    handoff: bool = False  # a human was offered or a ticket opened
    use_model: bool = True  # False: the fixed template is the reply (e.g. lockout, refusals)
    max_chars: int = 900  # longest reply the guard accepts for these facts
    answerability: dict[str, Any] | None = None  # the FAQ's decision and what it read (staff panel; not prompted)


@dataclass(frozen=True)
class Flow:
    """An active multi-turn flow: which one, what it has collected, when it started."""

    name: str  # verify_order | handoff_offer | return | exchange | refund_status | cancel
    slots: tuple[tuple[str, Any], ...] = ()
    started_at: str = ""
    updated_at: str = ""  # the last turn that touched it (a stale flow expires from here)

    def slot(self, key: str, default: Any = None) -> Any:
        return dict(self.slots).get(key, default)


@dataclass(frozen=True)
class SessionState:
    """Everything the assistant remembers about a conversation. Only the orchestrator persists it."""

    session_id: str
    customer_id: str | None = None
    verified_orders: tuple[str, ...] = ()
    flow: Flow | None = None
    failed_verifications: int = 0
    locked_until: str | None = None  # ISO timestamp
    unclear_turns: int = 0
    history: tuple[tuple[str, str], ...] = ()  # (role, text), most recent last

    @property
    def verified(self) -> bool:
        return self.customer_id is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        flow = data.get("flow")
        return cls(
            session_id=data["session_id"],
            customer_id=data.get("customer_id"),
            verified_orders=tuple(data.get("verified_orders", ())),
            flow=Flow(flow["name"], tuple(tuple(s) for s in flow["slots"]), flow["started_at"],
                      flow.get("updated_at") or flow["started_at"]) if flow else None,
            failed_verifications=int(data.get("failed_verifications", 0)),
            locked_until=data.get("locked_until"),
            unclear_turns=int(data.get("unclear_turns", 0)),
            history=tuple(tuple(h) for h in data.get("history", ())),
        )


@dataclass(frozen=True)
class HandlerResult:
    facts: Facts
    state: SessionState  # the session as the handler wants it after this turn


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Token:
    """A piece of reply text, streamed before the final Reply."""

    text: str


@dataclass(frozen=True)
class Reply:
    session_id: str
    text: str
    intent: str
    confidence: float
    route: str
    sources: tuple[str, ...] = ()  # FAQ doc ids cited
    actions: tuple[Action, ...] = ()
    verified: bool = False
    handoff: bool = False
    choices: tuple[str, ...] = ()
    passages: tuple[Passage, ...] = ()
    entities: Entities | None = None
    route_reason: str = ""
    facts_kind: str = ""
    generated_by: str = "template"  # template | model name
    guard: Verdict = Verdict(True)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    at: datetime | None = None
    card: dict[str, Any] | None = None  # structured view for rich clients (the widget's order card)
    turn_id: int | None = None  # the stored turn (feedback refers to it); set once persisted
    answerability: dict[str, Any] | None = None  # FAQ turns: why it answered or said it does not know

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["actions"] = [a.to_dict() for a in self.actions]
        d["at"] = self.at.isoformat() if self.at else None
        return d
