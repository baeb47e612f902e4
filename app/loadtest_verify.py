"""After a load test: what the database holds against what the replies said.

- every return a reply announced (its RMA id) exists exactly once, for that session's order, with its
  item and exactly one audit row; no order of the run has a second return, and no return exists that
  no reply announced;
- every handoff ticket a reply announced exists, one per session at most;
- no turn was lost: the turn rows of each session equal the turns sent (a turn answered with 200 and
  not stored is lost; a failed request may or may not have been stored, so it shows as a mismatch).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db import AuditRow, HandoffTicket, Return, ReturnItem, TurnRow
from app.loadtest_driver import SessionRecord

EXAMPLES = 10  # problems listed by id in the report; the counts cover all


def verify(engine: Engine, sessions: list[SessionRecord]) -> dict[str, Any]:
    orders = [rec.shopper.return_order for rec in sessions] + [rec.shopper.status_order for rec in sessions]
    ids = [rec.session_id for rec in sessions if rec.session_id]
    with Session(engine) as s:
        returns = s.execute(select(Return.id, Return.order_id, Return.session_id).where(Return.order_id.in_(orders))
                            ).all()
        rmas = [r.id for r in returns]
        items = Counter(dict(s.execute(select(ReturnItem.return_id, func.count()).where(ReturnItem.return_id.in_(rmas))
                                       .group_by(ReturnItem.return_id)).all()))
        audits = Counter(dict(s.execute(select(AuditRow.object_id, func.count()).where(AuditRow.object_id.in_(rmas))
                                        .group_by(AuditRow.object_id)).all()))
        stored_turns = Counter(dict(s.execute(select(TurnRow.session_id, func.count())
                                              .where(TurnRow.session_id.in_(ids))
                                              .group_by(TurnRow.session_id)).all()))
        tickets = Counter(dict(s.execute(select(HandoffTicket.session_id, func.count())
                                         .where(HandoffTicket.session_id.in_(ids))
                                         .group_by(HandoffTicket.session_id)).all()))
        ticket_ids = set(s.scalars(select(HandoffTicket.id).where(HandoffTicket.session_id.in_(ids))).all())
    return {**_returns(sessions, returns, items, audits), **_tickets(sessions, tickets, ticket_ids),
            **_turns(sessions, stored_turns)}


def _returns(sessions: list[SessionRecord], returns: list[Any], items: Counter, audits: Counter) -> dict[str, Any]:
    per_order = Counter(r.order_id for r in returns)
    by_id = {r.id: r for r in returns}
    announced: dict[str, SessionRecord] = {}
    for rec in sessions:
        for rma in dict.fromkeys(rec.rmas):  # a double "yes" announces the same RMA twice: one return
            announced[rma] = rec
    missing = [rma for rma in announced if rma not in by_id]
    wrong_order = [rma for rma, rec in announced.items()
                   if rma in by_id and by_id[rma].order_id != rec.shopper.return_order]
    two_rmas = [rec.session_id for rec in sessions if len(set(rec.rmas)) > 1]
    duplicated = sorted(order for order, n in per_order.items() if n > 1)
    unannounced = sorted(r.id for r in returns if r.id not in announced)
    bad_items = sorted(rma for rma in by_id if items.get(rma, 0) != 1)
    bad_audit = sorted(rma for rma in by_id if audits.get(rma, 0) != 1)
    return {
        "returns_confirmed": len(announced),  # distinct RMA ids the replies announced
        "returns_in_database": len(returns),
        "returns_missing": len(missing), "returns_duplicated": len(duplicated),
        "returns_unannounced": len(unannounced), "returns_wrong_order": len(wrong_order),
        "sessions_announcing_two_rmas": len(two_rmas),
        "returns_bad_items": len(bad_items), "returns_bad_audit": len(bad_audit),
        "return_problems": {"missing": missing[:EXAMPLES], "duplicated_orders": duplicated[:EXAMPLES],
                            "unannounced": unannounced[:EXAMPLES], "wrong_order": wrong_order[:EXAMPLES],
                            "two_rmas_sessions": two_rmas[:EXAMPLES], "bad_items": bad_items[:EXAMPLES],
                            "bad_audit": bad_audit[:EXAMPLES]},
    }


def _tickets(sessions: list[SessionRecord], per_session: Counter, ticket_ids: set[str]) -> dict[str, Any]:
    announced = {t for rec in sessions for t in rec.tickets}
    missing = sorted(announced - ticket_ids)
    return {"tickets_confirmed": len(announced), "tickets_in_database": sum(per_session.values()),
            "tickets_missing": len(missing), "tickets_duplicated": sum(1 for n in per_session.values() if n > 1)}


def _turns(sessions: list[SessionRecord], stored: Counter) -> dict[str, Any]:
    lost = {rec.session_id: rec.acknowledged - stored.get(rec.session_id, 0) for rec in sessions if rec.session_id}
    mismatched = [rec.session_id for rec in sessions if rec.session_id and stored.get(rec.session_id, 0) != rec.sent]
    return {"turns_stored": sum(stored.values()),
            "turns_lost": sum(n for n in lost.values() if n > 0),  # answered with 200, yet not in the database
            "sessions_turns_mismatch": len(mismatched),  # turn rows != turns sent (failed requests included)
            "turn_mismatch_sessions": mismatched[:EXAMPLES]}
