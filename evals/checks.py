"""Turn and final-state checks. Each returns a list of failure messages (empty = pass)."""

from __future__ import annotations

import re
from typing import Any

from app.schema import Reply


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _partial(expected: Any, actual: Any) -> bool:
    """Expected mapping values must equal the actual's (recursively); lists match element-wise."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _partial(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            _partial(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, float | int) and isinstance(actual, float | int) and not isinstance(expected, bool):
        return abs(float(expected) - float(actual)) < 0.005
    return str(expected) == str(actual) if not isinstance(expected, bool) else expected == actual


def check_turn(expect: dict[str, Any], reply: Reply) -> list[str]:
    failures: list[str] = []
    text = reply.text.lower()
    if "intent" in expect:
        want = str(expect["intent"])
        got = reply.intent if "." in want else reply.intent.split(".", 1)[0]
        if got != want:
            failures.append(f"intent: expected {want}, got {reply.intent}")
    if "route" in expect and reply.route != expect["route"]:
        failures.append(f"route: expected {expect['route']}, got {reply.route}")
    for s in _as_list(expect.get("reply_contains", [])):
        if str(s).lower() not in text:
            failures.append(f"reply_contains: {s!r} not in reply")
    if "reply_contains_any" in expect:
        options = _as_list(expect["reply_contains_any"])
        if not any(str(s).lower() in text for s in options):
            failures.append(f"reply_contains_any: none of {options!r} in reply")
    for s in _as_list(expect.get("reply_not_contains", [])):
        if str(s).lower() in text:
            failures.append(f"reply_not_contains: {s!r} is in reply")
    for pattern in _as_list(expect.get("reply_matches", [])):
        if not re.search(str(pattern), reply.text, re.IGNORECASE | re.DOTALL):
            failures.append(f"reply_matches: /{pattern}/ does not match")
    for doc_id in _as_list(expect.get("sources", [])):
        if doc_id not in reply.sources:
            failures.append(f"sources: {doc_id} not cited (cited: {list(reply.sources)})")
    if "actions" in expect:
        failures += _check_actions(_as_list(expect["actions"]), [a.to_dict() for a in reply.actions])
    if "handoff" in expect and bool(expect["handoff"]) != reply.handoff:
        failures.append(f"handoff: expected {expect['handoff']}, got {reply.handoff}")
    if "verified" in expect and bool(expect["verified"]) != reply.verified:
        failures.append(f"verified: expected {expect['verified']}, got {reply.verified}")
    return failures


def _check_actions(expected: list[Any], actual: list[dict[str, dict[str, Any]]]) -> list[str]:
    if not expected:
        return [f"actions: expected none, got {actual}"] if actual else []
    failures = []
    remaining = list(actual)
    for want in expected:
        if not isinstance(want, dict) or len(want) != 1:
            failures.append(f"actions: {want!r} must be {{name: {{arg: value}}}}")
            continue
        match = next((a for a in remaining if _partial(want, a)), None)
        if match is None:
            failures.append(f"actions: {want} not done (done: {actual})")
        else:
            remaining.remove(match)
    return failures


def check_final_state(expected: dict[str, Any], actual: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Listed rows must match the table's rows one to one (same count; each on the fields listed)."""
    failures = []
    for table, rows in expected.items():
        got = list(actual.get(table, []))
        rows = rows or []
        if len(rows) != len(got):
            failures.append(f"final_state.{table}: expected {len(rows)} row(s), found {len(got)}: {got}")
            continue
        unmatched = list(got)
        for row in rows:
            match = next((g for g in unmatched if _partial(row, g)), None)
            if match is None:
                failures.append(f"final_state.{table}: no row matches {row} (rows: {got})")
            else:
                unmatched.remove(match)
    return failures
