"""Matplotlib charts returned as PNG bytes (embedded in the HTML as data URLs).

Values are plotted x100 like the tables. Error bars are the runs' 95 % bootstrap intervals;
hatched bars are groups smaller than the task's minimum group size.
"""

from __future__ import annotations

import io
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from medharness.report.document import Score  # noqa: E402

MAX_LABEL = 40


def literal(text: str) -> str:
    """Untrusted text as literal plot text: `$` would start matplotlib mathtext."""
    return " ".join(str(text).split()).replace("$", r"\$")


def plain(text: str) -> str:
    """A short literal label (legends, ticks)."""
    text = " ".join(str(text).split())
    if len(text) > MAX_LABEL:
        text = text[: MAX_LABEL - 1] + "\u2026"
    return literal(text)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: dict[str, Sequence[Score]],
    ylabel: str,
) -> bytes:
    """Grouped bars: one group per category, one bar per series, CI error bars."""
    n_series = max(len(series), 1)
    width = 0.8 / n_series
    fig_width = min(max(6.0, 0.35 * len(categories) * n_series + 3.0), 16.0)
    fig, ax = plt.subplots(figsize=(fig_width, 4.2))
    positions = list(range(len(categories)))
    handles = []
    for index, (label, scores) in enumerate(series.items()):
        color = f"C{index % 10}"
        shown = [(p, s) for p, s in zip(positions, scores) if s.value is not None]
        xs = [p - 0.4 + width * (index + 0.5) for p, _ in shown]
        bars = ax.bar(xs, [100 * s.value for _, s in shown], width, color=color,
                      yerr=_error_bars([s for _, s in shown]), capsize=2, error_kw={"elinewidth": 0.8})
        for bar, (_, score) in zip(bars, shown):
            if score.small:
                bar.set_hatch("//")
        handles.append(Patch(facecolor=color, label=plain(label)))
    ax.set_xticks(positions, [plain(c) for c in categories], rotation=30 if len(categories) > 5 else 0, ha="right" if len(categories) > 5 else "center")
    ax.set_ylabel(plain(ylabel))
    ax.set_title(literal(title))
    _from_zero(ax)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def selection_chart(
    title: str,
    ratios: Sequence[float],
    series: dict[str, Sequence[Score]],
    metric: str,
    visual_tokens: Sequence[Optional[float]],
    seconds: Sequence[Optional[float]],
) -> bytes:
    """Top: metric against selection ratio, one line per series. Bottom: cost per sample."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for label, scores in series.items():
        points_ = [(r, s) for r, s in zip(ratios, scores) if s.value is not None]
        if not points_:
            continue
        xs = [r for r, _ in points_]
        ys = [100 * s.value for _, s in points_]
        top.errorbar(xs, ys, yerr=_error_bars([s for _, s in points_]), marker="o", capsize=3, label=plain(label))
    top.set_ylabel(plain(metric) + " (x100)")
    top.set_title(literal(title))
    _from_zero(top)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _cost_line(bottom, ratios, visual_tokens, "visual tokens / sample", "tab:purple", "s")
    bottom.set_xlabel("selection ratio (share of high-resolution crops kept)")
    right = bottom.twinx()
    _cost_line(right, ratios, seconds, "seconds / sample", "tab:gray", "^")
    bottom.set_xticks(list(ratios), [f"{r:g}" for r in ratios])
    bottom.grid(alpha=0.3)
    return _png(fig)


def cost_chart(
    title: str,
    metric: str,
    scores: Sequence[Score],
    models: Sequence[str],
    axes: dict[str, Sequence[Optional[float]]],
    fronts: dict[str, set[int]],
) -> bytes:
    """One panel per cost axis: the metric (x100, 95 % CI) against that cost, one colour per
    model, the Pareto front of each panel drawn as a line through its points (ringed)."""
    names = list(axes)
    fig, panels = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1.8, 3.8), squeeze=False)
    colours = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(models))}
    for ax, name in zip(panels[0], names):
        shown = [i for i, c in enumerate(axes[name]) if c is not None and scores[i].value is not None]
        for model, colour in colours.items():
            own = [i for i in shown if models[i] == model]
            if own:
                ax.errorbar([axes[name][i] for i in own], [100 * scores[i].value for i in own],
                            yerr=_error_bars([scores[i] for i in own]), fmt="o", color=colour, capsize=2,
                            label=plain(model))
        front = sorted(fronts.get(name, set()) & set(shown), key=lambda i: axes[name][i])
        if front:
            xs, ys = [axes[name][i] for i in front], [100 * scores[i].value for i in front]
            ax.plot(xs, ys, color="black", linewidth=0.8, linestyle=":")
            ax.scatter(xs, ys, s=120, facecolors="none", edgecolors="black", linewidths=1.0)
        ax.set_xlabel(plain(name))
        ax.set_ylabel(plain(metric) + " (x100)")
        _from_zero(ax)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=plain(m)) for m, c in colours.items()]
    panels[0][-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(literal(title))
    return _png(fig)


def _cost_line(ax, ratios: Sequence[float], values: Sequence[Optional[float]], label: str, color: str, marker: str) -> None:
    pairs = [(r, v) for r, v in zip(ratios, values) if v is not None]
    if pairs:
        ax.plot([r for r, _ in pairs], [v for _, v in pairs], marker=marker, color=color, linestyle="--")
    _from_zero(ax)
    ax.set_ylabel(label if pairs else f"{label} (not recorded)", color=color)
    ax.tick_params(axis="y", labelcolor=color)


def _from_zero(ax) -> None:
    """Axes start at 0; an all-zero series still gets a visible scale instead of +-0.05."""
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))


def _error_bars(scores: Sequence[Score]) -> list[list[float]]:
    lower, upper = [], []
    for s in scores:
        if s.value is None or s.low is None or s.high is None:
            lower.append(0.0)
            upper.append(0.0)
        else:
            lower.append(max(0.0, 100 * (s.value - s.low)))
            upper.append(max(0.0, 100 * (s.high - s.value)))
    return [lower, upper]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
