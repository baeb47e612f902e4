"""`shopdesk eval record SESSION_ID`: a real conversation from the database as a transcript to edit.

What the database keeps is what gets recorded: the shopper's text as stored, which is PII-masked
(``ada.park@example.com`` is stored as ``a***@example.com``), and per turn the route, the
verification, the writes and the cited articles. The transcript

- starts from an empty shop (``seed: empty``) holding the customer and the orders the session was
  verified for, read from the shop database, with their returns from before the conversation and
  the products of their items; the customer's name, email, phone and address are replaced by
  placeholders, so no personal data reaches a file that may be committed;
- puts the placeholder email where the shopper verified with a masked email (so the replay
  verifies the same way) and ``someone.else@example.com`` for other masked emails (a failed attempt
  stays a failed attempt); masked phone numbers stay masked;
- expects what the assistant did then: route, verified, writes (by name), cited articles, and
  a person offered; the reply text follows each turn as a comment, never as an expectation (the
  model's wording may change, the facts may not);
- checks the final state of those orders, their returns and the session's handoff tickets.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from app.db import Customer, HandoffTicket, Order, Product, Return, SessionRow, TurnRow
from app.errors import TranscriptError
from app.pii import mask

MASKED_EMAIL = re.compile(r"[A-Za-z0-9._%+-]\*\*\*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
OTHER_EMAIL = "someone.else@example.com"


def placeholder_email(customer_id: str) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', customer_id.lower()).strip('-') or 'customer'}@customers.example"


def _day(value: Any) -> str | None:
    return value.isoformat() if value else None


def _order_fixture(o: Order) -> dict[str, Any]:
    row: dict[str, Any] = {"id": o.id, "customer": o.customer_id, "placed_at": o.placed_at.isoformat(),
                           "status": o.status}
    ship = o.shipment
    if ship is not None:
        row.update({k: v for k, v in (("shipped_at", _day(ship.shipped_at)),
                                      ("expected_delivery", _day(ship.expected_delivery)),
                                      ("delivered_at", _day(ship.delivered_at)), ("carrier", ship.carrier),
                                      ("tracking_number", ship.tracking_number)) if v})
        if ship.events:
            row["tracking_events"] = [{"at": e.at.isoformat() + "Z", "location": e.location,
                                       "description": e.description} for e in ship.events]
    if o.payments:
        row["payment_method"] = o.payments[0].method
    if o.shipping_zip:
        row["shipping_zip"] = o.shipping_zip
    row["items"] = [{"sku": i.sku, "name": i.name, "qty": i.qty, "price": float(i.price), "category": i.category,
                     "final_sale": i.final_sale} for i in o.items]
    return row


def _session_and_turns(s: Session, session_id: str) -> tuple[SessionRow, list[TurnRow]]:
    row = s.get(SessionRow, session_id)
    if row is None:
        recent = s.scalars(select(SessionRow.id).order_by(SessionRow.updated_at.desc()).limit(5)).all()
        hint = f"; recent sessions: {', '.join(recent)}" if recent else "; the database has no sessions"
        raise TranscriptError(f"no session {session_id!r} in the database{hint}")
    turns = s.scalars(select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.id)).all()
    if not turns:
        raise TranscriptError(f"session {session_id!r} has no turns to record")
    return row, list(turns)


def _user_text(stored: str, verified_here: bool, customer_email: str | None, placeholder: str) -> str:
    """Stored (masked) text, with masked emails made replayable (see the module docstring)."""
    def swap(m: re.Match[str]) -> str:
        if verified_here and customer_email and m.group(0).lower() == mask(customer_email).lower():
            return placeholder
        return OTHER_EMAIL

    return MASKED_EMAIL.sub(swap, stored)


def _expect(reply: dict[str, Any], route: str) -> dict[str, Any]:
    expect: dict[str, Any] = {"route": route, "verified": bool(reply.get("verified"))}
    expect["actions"] = [{name: {}} for a in reply.get("actions") or [] for name in a]
    if reply.get("sources"):
        expect["sources"] = list(reply["sources"])
    if reply.get("handoff"):
        expect["handoff"] = True
    return expect


def record_session(engine: Engine, session_id: str) -> str:
    """The session as transcript YAML (with comments); raises TranscriptError for an unknown session."""
    with Session(engine) as s:
        session, turns = _session_and_turns(s, session_id)
        state = session.state or {}
        customer_id = state.get("customer_id") or session.customer_id
        started = turns[0].at
        order_ids = list(dict.fromkeys(state.get("verified_orders") or []))
        customer = s.get(Customer, customer_id) if customer_id else None
        if customer is not None and not order_ids:  # verified by a signed token: every order may be discussed
            order_ids = list(s.scalars(select(Order.id).where(Order.customer_id == customer.id)))
        orders = s.scalars(select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).options(
            selectinload(Order.items), selectinload(Order.shipment), selectinload(Order.payments))).all()
        returns = s.scalars(select(Return).where(Return.order_id.in_(order_ids)).order_by(Return.id)
                            .options(selectinload(Return.items))).all()
        skus = {i.sku for o in orders for i in o.items}
        products = s.scalars(select(Product).where(Product.sku.in_(skus)).order_by(Product.sku)).all()
        tickets = s.scalars(select(HandoffTicket).where(HandoffTicket.session_id == session_id)).all()
        fixtures: dict[str, Any] = {}
        placeholder = placeholder_email(customer.id) if customer is not None else OTHER_EMAIL
        if customer is not None:
            fixtures["customers"] = [{"id": customer.id, "name": f"Customer {customer.id}", "email": placeholder,
                                      **({"zip": customer.zip} if customer.zip else {})}]
        if products:
            fixtures["products"] = [{"sku": p.sku, "product": p.product, "name": p.name, "price": float(p.price),
                                     "category": p.category, "stock": p.stock, "final_sale": p.final_sale,
                                     **({"attributes": dict(p.attributes)} if p.attributes else {})} for p in products]
        if orders:
            fixtures["orders"] = [_order_fixture(o) for o in orders]
        earlier = [r for r in returns if r.created_at < started]
        if earlier:
            fixtures["returns"] = [{"id": r.id, "order": r.order_id, "status": r.status,
                                    "refund_amount": float(r.refund_amount), "created_at": r.created_at.isoformat(),
                                    "items": [{"sku": i.sku, "qty": i.qty} for i in r.items]} for r in earlier]
        final = {"orders": [{"id": o.id, "status": o.status} for o in orders],
                 "returns": [{"order": r.order_id, "status": r.status,
                              "items": [{"sku": i.sku, "qty": i.qty} for i in r.items]} for r in returns],
                 "handoff_tickets": [{"status": t.status} for t in tickets]}
        email = customer.email if customer is not None else None
        recorded = []
        was_verified = False
        for t in turns:
            reply = t.reply or {}
            verified_here = bool(reply.get("verified")) and not was_verified
            was_verified = bool(reply.get("verified"))
            recorded.append((_user_text(t.user_text, verified_here, email, placeholder), t.reply_text,
                             _expect(reply, t.route)))
    return _render(session_id, started, recorded, fixtures, final, sorted({e["route"] for _, _, e in recorded}),
                   placeholder if customer is not None else None)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "session"


def _render(session_id: str, started: datetime, turns: list[tuple[str, str, dict[str, Any]]],
            fixtures: dict[str, Any], final: dict[str, Any], routes: list[str], placeholder: str | None) -> str:
    description = (f"Recorded from session {session_id} ({len(turns)} turns, {started:%Y-%m-%d %H:%M} UTC). "
                   "The shopper's text is what the database stores, PII-masked"
                   + (f"; masked emails are replaced by {placeholder} where the shopper verified with one and by "
                      f"{OTHER_EMAIL} elsewhere" if placeholder else "")
                   + ". The customer's name, email, phone and address are placeholders; orders are as the shop "
                   "database holds them now (set a status back if this conversation changed it). Expectations "
                   "record what the assistant did; edit them into what it should do, add reply checks on facts "
                   "(order ids, dates, amounts), never on wording.")
    head = {"id": f"recorded-{_slug(session_id)}", "description": description, "tags": ["recorded", *routes],
            "now": started.replace(microsecond=0).isoformat() + "Z", "seed": "empty"}
    out = [f"# Recorded by `shopdesk eval record {session_id}`. Review it before committing:",
           "# the replies (comments) show what the assistant said; the expectations are what it did.",
           yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=110).rstrip()]
    if fixtures:
        out.append(yaml.safe_dump({"fixtures": fixtures}, sort_keys=False, allow_unicode=True, width=110).rstrip())
    out.append("turns:")
    for user, reply, expect in turns:
        said = " / ".join(line.strip() for line in reply.splitlines() if line.strip())
        out.append(f"  - user: {json.dumps(user, ensure_ascii=False)}")
        out.append(f"    # assistant said: {said[:400]}" + ("..." if len(said) > 400 else ""))
        out.append("    expect: " + yaml.safe_dump(expect, default_flow_style=True, sort_keys=False,
                                                    width=10_000).strip())
    out.append(yaml.safe_dump({"final_state": final}, sort_keys=False, allow_unicode=True, width=110).rstrip())
    return "\n".join(out) + "\n"
