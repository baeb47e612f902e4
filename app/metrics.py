"""Prometheus metrics of the web app: turn latency per stage, turns per route, guard outcomes,
handoffs, feedback and errors. ``GET /metrics`` serves them in the Prometheus text format.

Each app gets its own registry (not the process-global default), so tests can build several apps
and a worker's numbers are only its own; Prometheus sums the workers.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from app.schema import Reply

CONTENT_TYPE = CONTENT_TYPE_LATEST
# seconds; the generator dominates (up to the generation time budget), the other stages are milliseconds
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def guard_outcome(reply: Reply) -> str:
    """model (the model's reply passed the guard) | rejected (guard, timeout or model error: template
    sent) | template (facts that are answered by the template on purpose, nothing to check)."""
    if not reply.guard.accepted:
        return "rejected"
    return "template" if reply.generated_by == "template" else "model"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.stage_seconds = Histogram("shopdesk_turn_stage_seconds", "Time per stage of a turn (total: whole turn)",
                                       ["stage"], buckets=_BUCKETS, registry=r)
        self.turns = Counter("shopdesk_turns", "Turns answered, by route and channel", ["route", "channel"],
                             registry=r)
        self.guard = Counter("shopdesk_guard_outcomes", "Who wrote the reply: model (guard accepted), rejected "
                             "(template sent instead), template (by design)", ["outcome"], registry=r)
        self.handoffs = Counter("shopdesk_handoffs", "Human handoffs: offered to the shopper, or ticket opened",
                                ["kind"], registry=r)
        self.feedback = Counter("shopdesk_feedback", "Thumbs on turns", ["rating"], registry=r)
        self.errors = Counter("shopdesk_errors", "Requests that failed, by kind", ["kind"], registry=r)
        self.disconnects = Counter("shopdesk_stream_disconnects", "Streams the client left before the end",
                                   registry=r)

    def observe(self, reply: Reply, channel: str) -> None:
        for stage, seconds in reply.timings.items():
            self.stage_seconds.labels(stage).observe(seconds)
        self.turns.labels(reply.route, channel).inc()
        if reply.route != "invalid_input":
            self.guard.labels(guard_outcome(reply)).inc()
        if any("open_handoff_ticket" in a.to_dict() for a in reply.actions):
            self.handoffs.labels("ticket").inc()
        elif reply.handoff:
            self.handoffs.labels("offered").inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
