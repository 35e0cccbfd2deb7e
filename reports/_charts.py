"""Charts drawn with matplotlib and embedded as vector graphics.

Every chart is a function from already-computed numbers to a matplotlib
Figure; `to_svg` turns it into inline SVG (text kept as text, so it stays
searchable) and `to_pdf` into a one-page PDF that a notice overlays as a
vector form (WeasyPrint's SVG text drawing is slow, and notices are rendered
by the thousand). No chart is written by hand as SVG.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import math
import re
import textwrap
from collections.abc import Mapping, Sequence

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

RISK_UP = "#b03a2e"
RISK_DOWN = "#2e7d5b"
INK = "#222222"
MUTED = "#777777"
# Enough colours for every explanation method the importance chart compares (seven today).
PALETTE = ("#1f5f99", "#d08a1f", "#5a8f3c", "#8c4fa8", "#b03a2e", "#3a9a9a", "#7a7a7a", "#c2a83e")
MM = 1 / 25.4

# Applied per chart (rc_context), so importing reports never restyles anyone else's plots.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8.5,
    "axes.labelsize": 7.5,
    "axes.edgecolor": "#999999",
    "axes.linewidth": 0.6,
    "xtick.color": INK,
    "ytick.color": INK,
    "svg.fonttype": "none",
    "svg.hashsalt": "credit-audit",
    "pdf.fonttype": 42,
    "figure.dpi": 100,
}


def _styled(fn):  # noqa: ANN001, ANN202
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


_SVG_IDS = re.compile(r'(id="|href="#|url\(#)([^")]+)')
_svg_count = itertools.count(1)


def reset_svg_ids() -> None:
    """Number chart ids from 1 again: each report's SVG ids then depend on that report alone (reproducible bytes)."""
    global _svg_count
    _svg_count = itertools.count(1)


@_styled
def to_svg(fig: Figure, alt: str = "") -> str:
    """Inline SVG markup (no XML prolog), sized in points, with `alt` as its <title>.

    matplotlib numbers its element ids per figure (`text_1`, ...), so several
    charts in one HTML page would share ids; each chart's ids get their own prefix.
    The title is the chart's alternative text: a tagged PDF (PDF/UA) gives it to
    screen readers as the figure's /Alt.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.02, metadata={"Date": None})
    text = buf.getvalue()
    prefix = f"c{next(_svg_count)}-"
    svg = _SVG_IDS.sub(lambda m: m.group(1) + prefix + m.group(2), text[text.index("<svg"):])
    if alt:
        opened = svg.index(">") + 1
        svg = f"{svg[:opened]}\n<title>{html.escape(alt)}</title>{svg[opened:]}"
    return svg


@_styled
def to_pdf(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return buf.getvalue()


def _clean(ax) -> None:  # noqa: ANN001
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(length=2, width=0.5)


# ---- notice ---------------------------------------------------------------------
@_styled
def contributions(items: Sequence[tuple[str, float]], width_mm: float, height_mm: float) -> Figure:
    """Horizontal bars: how much each factor moved this applicant's estimated risk (points)."""
    fig = Figure(figsize=(width_mm * MM, height_mm * MM))
    ax = fig.add_axes((0.43, 0.17, 0.54, 0.8))
    labels = [textwrap.shorten(label, 58, placeholder="...") for label, _ in items]
    values = [v * 100 for _, v in items]
    y = range(len(items))
    ax.barh(y, values, color=[RISK_UP if v > 0 else RISK_DOWN for v in values], height=0.62)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.axvline(0, color=INK, linewidth=0.6)
    span = max(abs(v) for v in values) if values else 1.0
    ax.set_xlim(-span * 1.35 if min(values, default=0) < 0 else -span * 0.05, span * 1.35)
    for yi, v in zip(y, values, strict=True):
        ax.text(v + (span * 0.03 if v >= 0 else -span * 0.03), yi, f"{v:+.1f}", va="center",
                ha="left" if v >= 0 else "right", fontsize=6.5, color=INK)
    ax.set_xlabel("Change in your estimated chance of missing a payment (percentage points)")
    ax.tick_params(axis="y", labelsize=7)
    _clean(ax)
    return fig


# ---- audit report -----------------------------------------------------------------
@_styled
def roc(curves: Mapping[str, Mapping], aucs: Mapping[str, float]) -> Figure:
    fig = Figure(figsize=(85 * MM, 72 * MM))
    ax = fig.subplots()
    for (name, curve), color in zip(curves.items(), PALETTE, strict=False):
        ax.plot(curve["fpr"], curve["tpr"], color=color, linewidth=1.2, label=f"{name} (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], color=MUTED, linestyle=":", linewidth=0.8, label="chance")
    ax.set_xlabel("False positive rate (good payers declined)")
    ax.set_ylabel("True positive rate (defaulters declined)")
    ax.set_title("ROC curve")
    ax.legend(frameon=False, loc="lower right")
    _clean(ax)
    return fig


@_styled
def calibration(curves: Mapping[str, Mapping]) -> Figure:
    fig = Figure(figsize=(85 * MM, 72 * MM))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=MUTED, linestyle=":", linewidth=0.8, label="perfect calibration")
    for (name, curve), color in zip(curves.items(), PALETTE, strict=False):
        ax.plot(curve["mean_predicted"], curve["observed"], marker="o", markersize=3, color=color,
                linewidth=1.2, label=name)
    ax.set_xlabel("Predicted probability of default")
    ax.set_ylabel("Observed default rate")
    ax.set_title("Calibration (10 bins)")
    ax.legend(frameon=False, loc="upper left")
    _clean(ax)
    return fig


@_styled
def training_history(history: Sequence[Mapping], best_epoch: int | None) -> Figure:
    fig = Figure(figsize=(170 * MM, 50 * MM))
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], color=PALETTE[0], linewidth=1.2, label="training loss")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Training loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["val_auc"] for h in history], color=PALETTE[1], linewidth=1.2, label="validation ROC AUC")
    ax2.set_ylabel("Validation ROC AUC")
    if best_epoch is not None:  # named in the legend, so no label can cross a curve
        ax.axvline(best_epoch, color=MUTED, linestyle="--", linewidth=0.8, label=f"weights kept (epoch {best_epoch})")
    lines = ax.get_lines()[:1] + ax2.get_lines()[:1] + ax.get_lines()[1:2]
    # Above the axes, so neither curve nor the "weights kept" line can run through it.
    ax.legend(lines, [ln.get_label() for ln in lines], frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0),
              ncol=3)
    ax.spines[["top"]].set_visible(False)
    ax2.spines[["top"]].set_visible(False)
    return fig


@_styled
def importance(by_method: Mapping[str, Mapping[str, float]], labels: Mapping[str, str], top: int = 12) -> Figure:
    """Grouped bars of global importance, each method scaled to its own maximum."""
    methods = list(by_method)
    first = by_method[methods[0]]
    order = sorted(first, key=lambda f: -abs(first[f]))[:top]
    fig = Figure(figsize=(170 * MM, (22 + 6.2 * len(order)) * MM))
    ax = fig.subplots()
    height = 0.8 / len(methods)
    for k, (method, color) in enumerate(zip(methods, PALETTE, strict=False)):
        values = by_method[method]
        peak = max((abs(v) for v in values.values()), default=1.0) or 1.0
        ys = [i + (k - (len(methods) - 1) / 2) * height for i in range(len(order))]
        ax.barh(ys, [abs(values.get(f, 0.0)) / peak for f in order], height=height, color=color, label=method)
    ax.set_yticks(range(len(order)), [labels.get(f, f) for f in order])
    ax.invert_yaxis()
    ax.set_xlabel("Importance, relative to the method's most important feature")
    # Beside the bars, never over them (any corner of the axes may hold a long bar).
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _clean(ax)
    fig.tight_layout()
    return fig


def _tree_nodes(rules: Sequence[Mapping]) -> tuple[dict, dict]:
    """Rebuild the tree from its leaf rules: node -> (left, right) and leaf -> rule."""
    children: dict[tuple, list[tuple]] = {}
    leaves: dict[tuple, Mapping] = {}
    for rule in rules:
        path = tuple(rule["conditions"])
        leaves[path] = rule
        for depth in range(len(path)):
            parent, child = path[:depth], path[: depth + 1]
            kids = children.setdefault(parent, [])
            if child not in kids:
                kids.append(child)
    return children, leaves


@_styled
def surrogate_tree(rules: Sequence[Mapping]) -> Figure:
    """The surrogate tree drawn as boxes: each split asks the left branch's condition."""
    children, leaves = _tree_nodes(rules)
    order = list(leaves)
    xs: dict[tuple, float] = {leaf: i for i, leaf in enumerate(order)}
    depth = max((len(p) for p in order), default=0)

    def place(node: tuple) -> float:
        if node in xs:
            return xs[node]
        xs[node] = sum(place(c) for c in children[node]) / len(children[node])
        return xs[node]

    place(())
    width = max(len(order), 2)
    fig = Figure(figsize=(180 * MM, (30 + 30 * depth) * MM))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-depth - 0.55, 0.45)
    ax.axis("off")
    wrap = max(12, int(170 / width))
    for node, kids in children.items():
        for kid, answer in zip(kids, ("yes", "no"), strict=False):
            ax.annotate("", xy=(xs[kid], -len(kid) + 0.22), xytext=(xs[node], -len(node) - 0.2),
                        arrowprops={"arrowstyle": "-", "color": MUTED, "linewidth": 0.6})
            mx, my = (xs[kid] + xs[node]) / 2, -(len(kid) + len(node)) / 2
            ax.text(mx, my, answer, fontsize=5.5, color=MUTED, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"})
        question = textwrap.fill(kids[0][-1] + "?", wrap)
        ax.text(xs[node], -len(node), question, ha="center", va="center", fontsize=6, color=INK,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#eef2f7", "edgecolor": "#9fb3c8", "linewidth": 0.5})
    for leaf, rule in leaves.items():
        color = RISK_UP if rule["decision"] == "decline" else RISK_DOWN
        ax.text(xs[leaf], -len(leaf), f"{rule['decision']}\n{rule['samples']:,} rows\n{rule['purity']:.0%} pure",
                ha="center", va="center", fontsize=5.5, color="white", fontweight="bold",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": color, "edgecolor": "none"})
    return fig


@_styled
def interval_panels(rows: Sequence[str], panels: Sequence[Mapping], title: str, height_per_row: float = 6.0) -> Figure:
    """Point estimates with intervals, one row per label and one panel per metric, side by side.

    Each panel is a mapping: `label` (axis label), `values`, `lows`, `highs` (NaN: no interval),
    `xlim` (the metric's axis, the same in every chart of it, so that charts compare) and
    optionally `limit` with `limit_label` (a threshold, drawn as a dashed line).
    """
    fig = Figure(figsize=(170 * MM, (20 + height_per_row * len(rows)) * MM))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    ys = list(range(len(rows)))
    for ax, panel, color in zip(axes, panels, PALETTE, strict=False):
        values, lows, highs = (list(panel[k]) for k in ("values", "lows", "highs"))
        has = [not (math.isnan(lo) or math.isnan(hi)) for lo, hi in zip(lows, highs, strict=True)]
        err = [[v - lo if h else 0.0 for v, lo, h in zip(values, lows, has, strict=True)],
               [hi - v if h else 0.0 for v, hi, h in zip(values, highs, has, strict=True)]]
        ax.errorbar(values, ys, xerr=err, fmt="o", color=color, ecolor=color, elinewidth=1.0, capsize=2.5,
                    markersize=3.5)
        if panel.get("limit") is not None:
            ax.axvline(panel["limit"], color=RISK_UP, linestyle="--", linewidth=0.8)
            ax.annotate(panel.get("limit_label", ""), (panel["limit"], -0.75), xytext=(3, 0),
                        textcoords="offset points", color=RISK_UP, fontsize=6, va="bottom", ha="left")
        ax.set_xlim(*panel["xlim"])
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(panel["label"])
        ax.grid(axis="x", color="#e6e6e6", linewidth=0.5)
        _clean(ax)
    axes[0].set_yticks(ys, [textwrap.shorten(r, 40, placeholder="...") for r in rows])
    axes[0].set_ylim(len(rows) - 0.5, -1.0)
    fig.suptitle(title, x=0.01, ha="left", fontsize=8.5)
    fig.tight_layout()
    return fig


@_styled
def counts(items: Sequence[tuple[str, int]], xlabel: str) -> Figure:
    fig = Figure(figsize=(170 * MM, (14 + 5.5 * len(items)) * MM))
    ax = fig.subplots()
    ys = list(range(len(items)))
    ax.barh(ys, [n for _, n in items], color=PALETTE[0], height=0.6)
    ax.set_yticks(ys, [textwrap.shorten(label, 60, placeholder="...") for label, _ in items])
    ax.invert_yaxis()
    peak = max((n for _, n in items), default=1)
    for yi, (_, n) in zip(ys, items, strict=True):
        ax.text(n + peak * 0.01, yi, f"{n:,}", va="center", fontsize=6.5)
    ax.set_xlim(0, peak * 1.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    _clean(ax)
    fig.tight_layout()
    return fig
