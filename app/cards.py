"""Structured views of a reply's facts for rich clients (the widget's order card).

Built only from the handler's ``Facts``, so a card never shows more than the reply may state: an
order card exists only when the order handler answered for a verified owner (facts kind
``order_status``). The text reply stays complete without it; a card is an extra view.
"""

from __future__ import annotations

from typing import Any

from app.schema import Facts


def order_card(facts: Facts) -> dict[str, Any] | None:
    """``{"type": "order", ...}`` for an order-status answer, else None."""
    if facts.kind != "order_status":
        return None
    d = facts.data
    delivered = bool(d.get("delivered"))
    timeline = [{"label": "Order placed", "date": d.get("placed", ""), "done": True}]
    if d.get("shipped"):
        carrier = f" with {d['carrier']}" if d.get("carrier") else ""
        timeline.append({"label": f"Shipped{carrier}", "date": d["shipped"], "done": True})
    if d.get("latest_event") and not delivered:
        timeline.append({"label": "Latest update", "date": "", "detail": d["latest_event"], "done": True})
    if delivered:
        timeline.append({"label": "Delivered", "date": d["delivered"], "done": True})
    elif d.get("expected"):
        label = "Was expected" if d.get("expected_passed") else "Expected delivery"
        timeline.append({"label": label, "date": d["expected"], "done": False})
    return {
        "type": "order",
        "order_id": d.get("order_id", ""),
        "status": d.get("status", ""),
        "status_text": d.get("status_text", ""),
        "items_text": d.get("items_text", ""),
        "items": [{"name": str(i["name"]), "qty": int(i["qty"])} for i in d.get("items", [])],
        "carrier": d.get("carrier", ""),
        "tracking_number": d.get("tracking_number", ""),
        "timeline": timeline,
        "next_step": d.get("next_step", ""),
    }
