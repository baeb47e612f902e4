"""The return and cancellation policy, enforced in code from ``knowledge_base/policy.yaml``.

Pure functions over frozen values: no database, no model. Every decision names the clause it
applied, so a refusal can always say why, and the FAQ article that quotes the same clause ids is
checked against this file by a test (they cannot disagree).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

POLICY_FILE = Path(__file__).resolve().parents[1] / "knowledge_base" / "policy.yaml"


class PolicyError(ValueError):
    """policy.yaml is malformed or inconsistent (its lookup table disagrees with its rules)."""


@dataclass(frozen=True)
class Policy:
    clauses: dict[str, str]  # clause id -> shopper-readable sentence
    default_window: tuple[int, str]  # (days, clause)
    category_windows: dict[str, tuple[int, str]]
    final_sale_clause: str
    hygiene_categories: frozenset[str]
    hygiene_clause: str
    gift_card_categories: frozenset[str]
    gift_card_clause: str
    condition_clause: str
    us_shipping: tuple[Decimal, str]
    intl_shipping: tuple[Decimal, str]
    refund_method_clause: str
    refund_timing: tuple[int, int, str]  # business days min, max, clause
    exchange_clause: str
    cancel_statuses: frozenset[str]
    cancel_clause: str
    shipped_statuses: frozenset[str]
    shipped_clause: str

    def text(self, clause: str) -> str:
        return self.clauses[clause]

    def window(self, category: str) -> tuple[int, str]:
        return self.category_windows.get(category, self.default_window)

    def shortest_window(self, categories: Iterable[str]) -> tuple[int, str]:
        """The window an order's items share at least: the shortest of their categories' windows."""
        return min((self.window(c) for c in categories), key=lambda w: w[0], default=self.default_window)


@dataclass(frozen=True)
class ItemDecision:
    sku: str
    name: str
    qty: int
    eligible: bool
    clause: str
    reason: str  # short machine-readable reason: ok, not_delivered, gift_card, final_sale, window, hygiene, condition
    refund_amount: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class CancelDecision:
    allowed: bool
    clause: str


def _rule(data: dict[str, Any], *path: str) -> dict[str, Any]:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise PolicyError(f"policy.yaml lacks {'.'.join(path)}")
        node = node[key]
    return node


def parse_policy(data: dict[str, Any]) -> Policy:
    clauses: dict[str, str] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "clause" in node and "text" in node:
                if node["clause"] in clauses:
                    raise PolicyError(f"clause id {node['clause']} is used twice")
                clauses[node["clause"]] = str(node["text"])
            for value in node.values():
                collect(value)

    collect({k: v for k, v in data.items() if k != "categories"})
    windows = _rule(data, "return_windows")
    category_windows = {cat: (int(rule["days"]), rule["clause"])
                        for rule in windows.get("by_category", {}).values() for cat in rule["categories"]}
    refund = _rule(data, "refund")
    timing = _rule(refund, "timing")
    cancel = _rule(data, "cancellation")
    policy = Policy(
        clauses=clauses,
        default_window=(int(windows["default"]["days"]), windows["default"]["clause"]),
        category_windows=category_windows,
        final_sale_clause=_rule(data, "exclusions", "final_sale")["clause"],
        hygiene_categories=frozenset(_rule(data, "exclusions", "hygiene")["categories"]),
        hygiene_clause=_rule(data, "exclusions", "hygiene")["clause"],
        gift_card_categories=frozenset(_rule(data, "exclusions", "gift_cards")["categories"]),
        gift_card_clause=_rule(data, "exclusions", "gift_cards")["clause"],
        condition_clause=_rule(data, "condition")["clause"],
        us_shipping=(Decimal(str(_rule(data, "return_shipping", "us")["cost"])),
                     _rule(data, "return_shipping", "us")["clause"]),
        intl_shipping=(Decimal(str(_rule(data, "return_shipping", "international")["cost"])),
                       _rule(data, "return_shipping", "international")["clause"]),
        refund_method_clause=refund["clause"],
        refund_timing=(int(timing["business_days"]["min"]), int(timing["business_days"]["max"]), timing["clause"]),
        exchange_clause=_rule(data, "exchange")["clause"],
        cancel_statuses=frozenset(cancel["allowed_statuses"]),
        cancel_clause=cancel["clause"],
        shipped_statuses=frozenset(_rule(cancel, "shipped")["statuses"]),
        shipped_clause=_rule(cancel, "shipped")["clause"],
    )
    _check_lookup_table(policy, data.get("categories") or {})
    return policy


def _check_lookup_table(policy: Policy, table: dict[str, Any]) -> None:
    """The resolved per-category table at the bottom of the file must agree with the rules."""
    for category, row in table.items():
        if category in policy.gift_card_categories:
            if row.get("returnable") is not False:
                raise PolicyError(f"categories.{category}: gift cards are not returnable ({policy.gift_card_clause})")
            continue
        days, clause = policy.window(category)
        if row.get("window_days") != days or clause not in row.get("clauses", []):
            raise PolicyError(
                f"categories.{category}: window {row.get('window_days')} disagrees with {clause} ({days})")
        if (category in policy.hygiene_categories) != (policy.hygiene_clause in row.get("clauses", [])):
            raise PolicyError(f"categories.{category}: hygiene clause disagrees with exclusions.hygiene")


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_FILE) -> Policy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read {path}: {exc}") from exc
    return parse_policy(data)


def evaluate_return_item(policy: Policy, *, sku: str, name: str, category: str, final_sale: bool, qty: int,
                         unit_price: Decimal, delivered_at: date | None, today: date,
                         opened: bool | None = None, condition_ok: bool | None = None,
                         damaged: bool = False) -> ItemDecision:
    """Can this item be returned today? Checks in the order a support agent would, naming the clause."""
    days, window_clause = policy.window(category)

    def no(clause: str, reason: str) -> ItemDecision:
        return ItemDecision(sku, name, qty, False, clause, reason)

    if category in policy.gift_card_categories:
        return no(policy.gift_card_clause, "gift_card")
    if delivered_at is None:
        return no(window_clause, "not_delivered")
    if final_sale and not damaged:
        return no(policy.final_sale_clause, "final_sale")
    if (today - delivered_at).days > days:
        return no(window_clause, "window")
    if category in policy.hygiene_categories and opened and not damaged:
        return no(policy.hygiene_clause, "hygiene")
    if condition_ok is False and not damaged:
        return no(policy.condition_clause, "condition")
    refund = (unit_price * qty).quantize(Decimal("0.01"))
    return ItemDecision(sku, name, qty, True, window_clause, "ok", refund)


def refund_total(policy: Policy, decisions: list[ItemDecision], international: bool = False) -> tuple[Decimal, str]:
    """Sum of eligible items less return shipping; returns (amount, shipping clause applied)."""
    items = sum((d.refund_amount for d in decisions if d.eligible), Decimal("0.00"))
    cost, clause = policy.intl_shipping if international else policy.us_shipping
    return max(items - cost, Decimal("0.00")) if items else Decimal("0.00"), clause


def can_cancel(policy: Policy, status: str) -> CancelDecision:
    if status in policy.cancel_statuses:
        return CancelDecision(True, policy.cancel_clause)
    return CancelDecision(False, policy.shipped_clause)
