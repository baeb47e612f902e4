"""Who is asking: for the order lookup (app/orders.py) and the flows that act on orders (returns,
exchanges, refund status, cancellations).

The rules of design.md section 4 (``app.verification``): a signed customer
token, or an order number with its email or billing zip; failures counted, lockout enforced; an
unknown order and wrong details get the same answer. ``identify`` returns either the verified
session or the question (a facts kind) the flow must ask before it can go on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.schema import Entities, SessionState
from app.verification import Verifier


@dataclass(frozen=True)
class Identity:
    state: SessionState  # the session after this step: verified, or with the failure counted
    ask: str | None = None  # None: verified; else the facts kind to answer with (ask_order_number, ...)
    data: dict[str, Any] = field(default_factory=dict)
    order_id: str | None = None  # the order number the shopper gave while verifying


def identify(verifier: Verifier, state: SessionState, entities: Entities, client_id: str, now: datetime,
             customer_token: str | None = None, pending_order: str | None = None) -> Identity:
    def locked(s: SessionState) -> Identity | None:
        lock = verifier.lockout(s.session_id, client_id, now)
        if lock is None:
            return None
        return Identity(dataclasses.replace(s, flow=None, locked_until=lock.until.isoformat()), "locked_out",
                        {"minutes": lock.minutes_left(now)})

    def failed(s: SessionState) -> SessionState:
        return dataclasses.replace(s, failed_verifications=s.failed_verifications + 1)

    if (lock := locked(state)) is not None:
        return lock
    order_id = entities.order_ids[0] if entities.order_ids else pending_order
    if state.verified:
        return Identity(state, order_id=order_id)
    if customer_token:
        check = verifier.by_token(state.session_id, client_id, customer_token, now)
        if check.valid:
            return Identity(dataclasses.replace(state, customer_id=check.customer_id), order_id=order_id)
        state = failed(state)
        if (lock := locked(state)) is not None:
            return lock
        if not (order_id and (entities.emails or entities.zips)):
            return Identity(state, "token_rejected")
    if order_id is None:
        return Identity(state, "ask_order_and_details")
    if not (entities.emails or entities.zips):
        return Identity(state, "ask_verification", {"order_id": order_id}, order_id=order_id)
    customer = verifier.by_order(state.session_id, client_id, order_id, next(iter(entities.emails), None),
                                 next(iter(entities.zips), None), now)
    if customer is None:
        state = failed(state)
        return locked(state) or Identity(state, "verify_failed", order_id=order_id)
    verified = dataclasses.replace(state, customer_id=customer,
                                   verified_orders=tuple(dict.fromkeys((*state.verified_orders, order_id))))
    return Identity(verified, order_id=order_id)
