"""The report's charts as PNG bytes (matplotlib's object API with the Agg canvas: no pyplot state,
no display, safe in worker processes and tests). The HTML report inlines them as base64."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

INK, GRID, GOOD, BAD, ACCENT = "#1f2933", "#d9dee3", "#2f855a", "#c53030", "#2b6cb0"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def confusion_png(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """Expected route (rows) against the route the assistant took (columns); the diagonal is right."""
    n = max(1, len(labels))
    fig = _figure(1.6 + 0.85 * n, 1.2 + 0.7 * n)
    ax = fig.add_subplot()
    if not labels:
        ax.text(0.5, 0.5, "no turn states an expected route", ha="center", va="center", color=INK)
        ax.set_axis_off()
        return _png(fig)
    peak = max((v for row in matrix for v in row), default=1) or 1
    shade = [[v / peak for v in row] for row in matrix]
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1.15)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                colour = "white" if shade[i][j] > 0.6 else (BAD if i != j else INK)
                ax.text(j, i, str(value), ha="center", va="center", fontsize=10, color=colour,
                        fontweight="bold" if i != j else "normal")
    ax.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=9)
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_xlabel("route the assistant took", color=INK)
    ax.set_ylabel("expected route", color=INK)
    ax.set_title("Expected vs actual route (off-diagonal = wrong)", fontsize=11, color=INK)
    return _png(fig)


def latency_png(seconds: Sequence[float], marks: dict[str, float]) -> bytes:
    """Histogram of per-turn latency with the percentile lines."""
    fig = _figure(6.4, 3.0)
    ax = fig.add_subplot()
    if seconds:
        ax.hist(seconds, bins=min(40, max(8, len(seconds) // 4)), color=ACCENT, alpha=0.85)
        for (label, value), style in zip(marks.items(), ("--", "-.", ":"), strict=False):
            ax.axvline(value, color=INK, linestyle=style, linewidth=1.2, label=f"{label} {value:.2f} s")
        ax.legend(frameon=False, fontsize=9)
    ax.set_xlabel("seconds per turn", color=INK)
    ax.set_ylabel("turns", color=INK)
    ax.grid(axis="y", color=GRID)
    ax.set_axisbelow(True)
    ax.set_title("How long each reply took", fontsize=11, color=INK)
    return _png(fig)


def rates_png(groups: dict[str, dict[str, Any]], title: str) -> bytes:
    """Horizontal bars: pass rate per group, with the counts."""
    names = list(groups)
    fig = _figure(6.4, 0.9 + 0.32 * max(1, len(names)))
    ax = fig.add_subplot()
    values = [groups[k]["rate"] or 0.0 for k in names]
    colours = [GOOD if v >= 0.999 else BAD for v in values]
    ax.barh(range(len(names)), values, color=colours, height=0.6)
    for i, k in enumerate(names):
        ax.text(min(values[i], 1.0) + 0.01, i, f"{groups[k]['passed']}/{groups[k]['n']}", va="center", fontsize=8,
                color=INK)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"], fontsize=8)
    ax.grid(axis="x", color=GRID)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=11, color=INK)
    return _png(fig)


def learning_curve_png(points: Sequence[dict[str, Any]], target: float) -> bytes:
    """The answerability rule against how many labelled questions it learned from: the share of held-out
    unanswerable questions declined and of held-out answerable ones wrongly declined (solid), the same
    cross-validated on the labelled questions (dashed), and the goal."""
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    n = [p["questions"] for p in points]
    for key, colour, label in (("declined_unanswerable", GOOD, "unanswerable declined"),
                               ("false_declines", BAD, "answerable wrongly declined")):
        ax.plot(n, [p["heldout"][key] for p in points], color=colour, marker="o", label=f"held out: {label}")
        ax.plot(n, [p["cross_validation"][key] for p in points], color=colour, linestyle="--", marker=".",
                alpha=0.7, label=f"cross-validated: {label}")
    ax.axhline(target, color=INK, linestyle=":", linewidth=1, label=f"goal {target:.0%} declined")
    span = max(n) - min(n) or 1
    for i, p in enumerate(points):  # a set close to the one before is named below its point, not over it
        crowded = i and (n[i] - n[i - 1]) / span < 0.08
        ax.annotate(p["sets"][-1], (p["questions"], p["heldout"]["declined_unanswerable"]),
                    textcoords="offset points", xytext=(0, -12 if crowded else 6), ha="center", fontsize=7,
                    color=INK)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 0.9, 1.0], ["0%", "25%", "50%", "75%", "90%", "100%"], fontsize=8)
    ax.set_xlabel("labelled questions learned from (writer sets added left to right)", color=INK)
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=7, loc="center right")
    ax.set_title("Answerability rule: more labelled questions", fontsize=11, color=INK)
    return _png(fig)
