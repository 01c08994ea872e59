"""Plotly figures for other stages' results: leaderboards, forecast fans and the plan.

Built from the JSON those stages write (plain lists and dicts), so the report never imports a
model. The analytics charts are in ``plots.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from shopseq.report.plots import layout

__all__ = [
    "fan_chart",
    "leaderboard_bars",
    "plan_heatmap",
    "plan_target_bars",
    "uplift_comparison",
]

_BLUE, _GREY, _ORANGE, _GREEN = "#2563eb", "#94a3b8", "#f97316", "#16a34a"


def leaderboard_bars(
    models: Sequence[str],
    values: Sequence[float],
    lower: Sequence[float | None],
    upper: Sequence[float | None],
    baseline: Sequence[bool],
    metric: str,
    *,
    lower_is_better: bool = False,
) -> go.Figure:
    """One bar per model with its interval as error bars; baselines grey.

    Args:
        models: Model names, in display order.
        values: The metric per model.
        lower: Lower bound per model (``None``: no interval).
        upper: Upper bound per model.
        baseline: Whether each model is a baseline.
        metric: The metric's name (axis title).
        lower_is_better: Say so in the title (MASE).

    Returns:
        A horizontal bar chart, best on top.
    """
    plus = [(u - v) if u is not None else 0.0 for v, u in zip(values, upper, strict=True)]
    minus = [(v - lo) if lo is not None else 0.0 for v, lo in zip(values, lower, strict=True)]
    fig = go.Figure(
        go.Bar(
            y=list(models)[::-1],
            x=list(values)[::-1],
            orientation="h",
            marker_color=[_GREY if b else _BLUE for b in baseline][::-1],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": plus[::-1],
                "arrayminus": minus[::-1],
                "color": "#0f172a",
                "thickness": 1.2,
            },
            text=[f"{v:.4g}" for v in values][::-1],
            textposition="inside",
            insidetextanchor="start",
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    better = "lower is better" if lower_is_better else "higher is better"
    return layout(
        fig,
        f"{metric} by model ({better}; grey: baselines; bars: 95 % interval where known)",
        height=max(260, 34 * len(models) + 110),
        xaxis_title=metric,
        yaxis={"type": "category", "automargin": True},
    )


def fan_chart(series: dict[str, Any], levels: Sequence[int], title: str) -> go.Figure:
    """History, forecast and its bands for one series; closed days marked.

    Args:
        series: One entry of ``forecast_series.json``'s ``series`` (history and forecast).
        levels: Interval levels present (e.g. ``[80, 95]``).
        title: Chart title.

    Returns:
        A line chart with shaded 80/95 % bands.
    """
    hist, fc = series.get("history") or {}, series["forecast"]
    fig = go.Figure()
    shades = {lv: 0.12 + 0.14 * i for i, lv in enumerate(sorted(levels, reverse=True))}
    x = list(fc["ds"])
    for level in sorted(levels, reverse=True):
        lo, hi = fc.get(f"lo-{level}"), fc.get(f"hi-{level}")
        if lo is None or hi is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(hi) + list(lo)[::-1],
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor=f"rgba(37,99,235,{shades[level]:.2f})",
                hoverinfo="skip",
                name=f"{level} % interval",
            )
        )
    if hist:
        y = [None if v is None else v for v in hist["y"]]
        fig.add_trace(
            go.Scatter(
                x=hist["ds"], y=y, mode="lines", line={"color": "#0f172a", "width": 1.4},
                name="history",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=fc["mean"], mode="lines", line={"color": _BLUE, "width": 2.2},
            name="forecast",
        )
    )  # fmt: skip
    closed_x = [d for d, c in zip(hist.get("ds", []), hist.get("closed", []), strict=False) if c]
    closed_x += [d for d, c in zip(x, fc.get("closed", []), strict=False) if c]
    if closed_x:
        fig.add_trace(
            go.Scatter(
                x=closed_x,
                y=[0.0] * len(closed_x),
                mode="markers",
                marker={"symbol": "x", "size": 7, "color": _ORANGE},
                name="closed (0)",
            )
        )
    gaps = [d for d, g in zip(hist.get("ds", []), hist.get("gap", []), strict=False) if g]
    if gaps:
        fig.add_trace(
            go.Scatter(
                x=gaps,
                y=[0.0] * len(gaps),
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 10, "color": "#dc2626"},
                name="gap (not logged)",
            )
        )
    return layout(
        fig,
        title,
        height=300,
        margin={"l": 55, "r": 20, "t": 48, "b": 40},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        hovermode="x unified",
    )


def plan_heatmap(
    targets: Sequence[str], days: Sequence[str], budget: Sequence[Sequence[float]], title: str
) -> go.Figure:
    """Budget per target (rows) and day (columns).

    Args:
        targets: Row labels.
        days: Column labels (dates).
        budget: ``[target][day]`` amounts.
        title: Chart title.

    Returns:
        A heatmap with the amounts written in the cells.
    """
    z = [list(row) for row in budget]
    text = [[f"{v:,.0f}" if v >= 0.5 else "" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(days),
            y=list(targets),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            colorscale="Blues",
            zmin=0,
            hovertemplate="%{y}, %{x}: %{z:,.2f}<extra></extra>",
            colorbar={"title": "budget"},
        )
    )
    return layout(
        fig,
        title,
        height=max(260, 30 * len(targets) + 140),
        xaxis={"type": "category", "title": "day the spend acts"},
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
    )


def plan_target_bars(entries: Sequence[dict[str, Any]], value_key: str, title: str) -> go.Figure:
    """Per target: budget (bars) and an expected outcome with its range (points with bars).

    Args:
        entries: ``plan.json`` targets (``budget``, ``<value_key>``, ``_lo``, ``_hi``, ``funded``).
        value_key: ``revenue`` (forecast) or ``uplift_revenue`` (response mode).
        title: Chart title.

    Returns:
        Budget bars on the left axis, the outcome on the right axis.
    """
    names = [e["target"] for e in entries]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=names,
            y=[e["budget"] for e in entries],
            name="budget",
            marker_color=[_BLUE if e["funded"] else _GREY for e in entries],
            text=[f"{e['budget']:,.0f}" for e in entries],
            textposition="outside",
        )
    )
    values = [e.get(value_key) for e in entries]
    if any(v is not None for v in values):
        lo = [e.get(f"{value_key}_lo") for e in entries]
        hi = [e.get(f"{value_key}_hi") for e in entries]
        fig.add_trace(
            go.Scatter(
                x=names,
                y=values,
                mode="markers",
                name=value_key.replace("_", " "),
                yaxis="y2",
                marker={"color": _GREEN, "size": 10, "symbol": "diamond"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": _span(values, hi, above=True),
                    "arrayminus": _span(values, lo, above=False),
                },
            )
        )
    return layout(
        fig,
        title,
        height=380,
        xaxis={"type": "category"},
        yaxis={"title": "budget", "rangemode": "tozero"},
        yaxis2={
            "title": value_key.replace("_", " "),
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )


def _span(
    values: Sequence[float | None], bounds: Sequence[float | None], *, above: bool
) -> list[float]:
    out = []
    for v, b in zip(values, bounds, strict=True):
        out.append(0.0 if v is None or b is None else (b - v if above else v - b))
    return out


def uplift_comparison(comparison: dict[str, Any]) -> go.Figure:
    """Expected uplift of the plan vs the proportional rule, with ranges.

    Args:
        comparison: ``plan.json``'s ``comparison`` (value, low, high per allocation).

    Returns:
        A bar chart.
    """
    names = ["allocation by marginal return", "proportional rule (same curves)"]
    keys = ["marginal_return", "proportional"]
    values = [comparison[k][0] for k in keys]
    lo = [comparison[k][1] for k in keys]
    hi = [comparison[k][2] for k in keys]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            marker_color=[_BLUE, _GREY],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - v for v, h in zip(values, hi, strict=True)],
                "arrayminus": [v - low for v, low in zip(values, lo, strict=True)],
            },
            text=[f"{v:,.0f}" for v in values],
            textposition="inside",
        )
    )
    unit = comparison.get("unit", "revenue")
    return layout(fig, f"Expected extra {unit}", height=320, yaxis_title=f"extra {unit}")
