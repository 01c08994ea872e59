"""Plotly figures for the report, one function per chart, built from analysis results only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from shopseq.analyze import (
    FunnelResult,
    PathsResult,
    RetentionResult,
    SegmentsResult,
    StatesResult,
    TransitionMatrix,
)
from shopseq.prepare.profile import DatasetProfile

__all__ = [
    "actions_bar",
    "funnel_chart",
    "funnel_groups_chart",
    "generic_chart",
    "heatmap",
    "layout",
    "retention_heatmap",
    "rfm_heatmap",
    "sankey",
    "segments_chart",
    "state_emissions_heatmap",
    "state_transitions_heatmap",
]

_BLUE, _ORANGE, _GREY = "#2563eb", "#f97316", "#94a3b8"
_FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 13}


def layout(fig: go.Figure, title: str, height: int = 420, **extra: Any) -> go.Figure:
    """The report's common look: title, white template, height, margins, font.

    Args:
        fig: The figure.
        title: Its title.
        height: Pixels.
        **extra: More ``update_layout`` settings (they win over the defaults).

    Returns:
        The figure.
    """
    settings: dict[str, Any] = {"margin": {"l": 60, "r": 30, "t": 60, "b": 50}, **extra}
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 16}},
        template="plotly_white",
        height=height,
        font=_FONT,
        **settings,
    )
    return fig


def actions_bar(profile: DatasetProfile) -> go.Figure:
    """Events per action.

    Args:
        profile: The dataset profile.

    Returns:
        A horizontal bar chart.
    """
    actions = list(profile.events_by_action)[::-1]
    counts = [profile.events_by_action[a] for a in actions]
    fig = go.Figure(
        go.Bar(
            x=counts,
            y=actions,
            orientation="h",
            marker_color=_BLUE,
            text=[f"{c:,} ({c / max(profile.n_events, 1):.1%})" for c in counts],
            textposition="auto",
        )
    )
    return layout(fig, "Events per action", height=300, xaxis_title="events")


def funnel_chart(result: FunnelResult) -> go.Figure:
    """The overall funnel with conversion from the first step.

    Args:
        result: A funnel.

    Returns:
        A funnel chart.
    """
    steps = result.overall.steps
    fig = go.Figure(
        go.Funnel(
            y=[s.action for s in steps],
            x=[s.n for s in steps],
            texttemplate="%{value:,}<br>%{percentInitial:.1%} of first · "
            "%{percentPrevious:.1%} of previous",
            marker={"color": [_BLUE, "#3b82f6", "#60a5fa", "#93c5fd", "#bfdbfe"][: len(steps)]},
        )
    )
    unit = "sessions" if result.by == "session" else "users"
    return layout(fig, f"Funnel ({unit}, window {result.window_seconds / 3600:g} h)", height=360)


def funnel_groups_chart(result: FunnelResult, title: str) -> go.Figure:
    """Conversion rate from step 1 to the last step per group, with the overall rate as a line.

    Args:
        result: A funnel with a breakdown.
        title: Chart title.

    Returns:
        A bar chart.
    """
    groups = result.groups
    fig = go.Figure(
        go.Bar(
            x=[g.group for g in groups],
            y=[g.conversion for g in groups],
            marker_color=_BLUE,
            customdata=[g.steps[0].n for g in groups],
            hovertemplate="%{x}: %{y:.2%} of %{customdata:,} %{meta}<extra></extra>",
            meta="sessions" if result.by == "session" else "users",
            text=[f"{g.conversion:.1%}" for g in groups],
            textposition="outside",
        )
    )
    fig.add_hline(y=result.overall.conversion, line_dash="dash", line_color=_ORANGE)
    overall = f"{title} · dashed line: everyone, {result.overall.conversion:.1%}"
    return layout(fig, overall, height=360, yaxis_tickformat=".1%", xaxis_type="category")


def sankey(result: PathsResult, min_share: float = 0.0) -> go.Figure:
    """Session flows over the first steps, ending in purchase, exit or continues.

    Args:
        result: Paths with flows.
        min_share: Hide flows carrying fewer than this share of all sessions (readability);
            flows into a purchase are always shown.

    Returns:
        A Sankey diagram.
    """
    floor = min_share * result.n_sessions
    flows = [f for f in result.flows if f.n >= floor or f.target.endswith("purchase")]
    nodes: list[str] = []
    for flow in flows:
        for name in (flow.source, flow.target):
            if name not in nodes:
                nodes.append(name)
    index = {name: i for i, name in enumerate(nodes)}

    def colour(name: str) -> str:
        if name.endswith("purchase"):
            return "#16a34a"
        if name == "exit":
            return "#dc2626"
        if name == "continues":
            return _GREY
        return _BLUE

    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={"label": nodes, "color": [colour(n) for n in nodes], "pad": 14},
            link={
                "source": [index[f.source] for f in flows],
                "target": [index[f.target] for f in flows],
                "value": [f.n for f in flows],
                "color": [
                    "rgba(22,163,74,0.35)"
                    if f.target.endswith("purchase")
                    else "rgba(220,38,38,0.25)"
                    if f.target == "exit"
                    else "rgba(148,163,184,0.35)"
                    for f in flows
                ],
            },
        )
    )
    hidden = f" (flows under {min_share:.1%} of sessions hidden)" if min_share else ""
    return layout(fig, f"Session flows over the first steps{hidden}", height=500)


def heatmap(matrix: TransitionMatrix, title: str, height: int = 460) -> go.Figure:
    """Row-normalised transition probabilities.

    Args:
        matrix: Transition matrix.
        title: Chart title.
        height: Pixels.

    Returns:
        A heatmap (rows: from, columns: to).
    """
    z = [list(row) for row in matrix.probabilities]
    text = [[f"{p:.0%}" if p >= 0.005 else "" for p in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            textfont={"size": 11 if len(matrix.columns) > 10 else 13},
            x=list(matrix.columns),
            y=list(matrix.rows),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            customdata=[list(row) for row in matrix.counts],
            hovertemplate="%{y} → %{x}: %{z:.1%} (%{customdata:,})<extra></extra>",
            colorbar={"tickformat": ".0%"},
        )
    )
    return layout(
        fig,
        title,
        height=height,
        xaxis={"title": "next", "type": "category", "side": "bottom"},
        yaxis={"title": "current", "type": "category", "autorange": "reversed"},
    )


def _probability_heatmap(
    rows: list[str],
    columns: list[str],
    z: list[list[float]],
    counts: list[list[int]],
    hover: str,
    title: str,
    x_title: str,
) -> go.Figure:
    text = [[f"{p:.0%}" if p >= 0.005 else "" for p in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=rows,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            customdata=counts,
            hovertemplate=hover,
            colorbar={"tickformat": ".0%"},
        )
    )
    return layout(
        fig,
        title,
        height=max(300, 70 * len(rows) + 140),
        xaxis={"title": x_title, "type": "category", "side": "bottom"},
        yaxis={"title": "state", "type": "category", "autorange": "reversed"},
    )


def state_transitions_heatmap(result: StatesResult) -> go.Figure:
    """Hidden-state transition probabilities with the start distribution as a first row.

    Args:
        result: Intent states.

    Returns:
        A heatmap (rows: from, columns: to; counts from the decoded paths on hover).
    """
    m = result.transitions
    starts = [[round(p * result.n_sessions) for p in result.start]]
    return _probability_heatmap(
        ["start", *m.rows],
        list(m.columns),
        [list(result.start), *(list(r) for r in m.probabilities)],
        starts + [list(r) for r in m.counts],
        "%{y} → %{x}: %{z:.1%} (%{customdata:,} decoded)<extra></extra>",
        "Intent-state transitions (row → column)",
        "next state",
    )


def state_emissions_heatmap(result: StatesResult) -> go.Figure:
    """What each hidden state emits.

    Args:
        result: Intent states.

    Returns:
        A heatmap (rows: states, columns: symbols).
    """
    m = result.emissions
    return _probability_heatmap(
        list(m.rows),
        list(m.columns),
        [list(r) for r in m.probabilities],
        [list(r) for r in m.counts],
        "%{y} emits %{x}: %{z:.1%} (%{customdata:,} events)<extra></extra>",
        "What each state emits (row sums to 100 %)",
        "event",
    )


def retention_heatmap(result: RetentionResult) -> go.Figure:
    """Share of each cohort active k periods later.

    Args:
        result: Retention.

    Returns:
        A heatmap (rows: cohorts, columns: periods since).
    """
    cohorts = result.cohorts
    n_periods = len(cohorts[0].rates) if cohorts else 0
    z = [[r for r in c.rates] for c in cohorts]
    text = [["" if r is None else f"{r:.0%}" for r in c.rates] for c in cohorts]
    labels = [f"{c.start.isoformat()} (n={c.size:,})" for c in cohorts]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n_periods)),
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="Greens",
            zmin=0,
            zmax=1,
            hovertemplate="%{y}, %{x} " + result.period + "s later: %{z:.1%}<extra></extra>",
            colorbar={"tickformat": ".0%"},
        )
    )
    anchor = "first event" if result.cohort_by == "first_activity" else "first purchase"
    active = "any event" if result.activity == "any" else "a purchase"
    return layout(
        fig,
        f"{result.period.capitalize()}ly cohorts by {anchor}: share with {active} k "
        f"{result.period}s later",
        height=max(320, 26 * len(cohorts) + 140),
        xaxis={"title": f"{result.period}s since cohort start", "dtick": 1},
        yaxis={"type": "category", "autorange": "reversed"},
    )


def rfm_heatmap(result: SegmentsResult) -> go.Figure:
    """Users per R score and F score.

    Args:
        result: Segments with the RFM grid.

    Returns:
        A heatmap.
    """
    z = [list(row) for row in result.rfm_grid]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=["0 (never bought)", "1", "2", "3", "4", "5"],
            y=["1", "2", "3", "4", "5"],
            text=[[f"{v:,}" for v in row] for row in z],
            texttemplate="%{text}",
            colorscale="Purples",
            hovertemplate="R %{y}, F %{x}: %{z:,} users<extra></extra>",
        )
    )
    return layout(
        fig,
        "Users by RFM recency (R) and frequency (F) score",
        height=380,
        xaxis={"title": "F score", "type": "category"},
        yaxis={"title": "R score (5 = most recent)", "type": "category"},
    )


def segments_chart(result: SegmentsResult) -> go.Figure:
    """Segment sizes with their buyer share.

    Args:
        result: Segments.

    Returns:
        A bar chart.
    """
    names = [f"{s.segment}: {s.name}" for s in result.segments]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[s.n_users for s in result.segments],
            marker_color=_BLUE,
            text=[f"{s.share:.0%} · {s.buyer_share:.0%} buy" for s in result.segments],
            textposition="outside",
        )
    )
    return layout(fig, "Segment sizes", height=360, yaxis_title="users", xaxis_type="category")


def generic_chart(spec: dict[str, Any]) -> go.Figure:
    """A line or bar chart from the report's JSON hook (see docs/report.md).

    Args:
        spec: ``{"title", "kind", "x", "series": [{"name", "y", "lower"?, "upper"?}], ...}``.

    Returns:
        The chart.
    """
    kind = spec.get("kind", "line")
    x: Sequence[Any] = spec["x"]
    fig = go.Figure()
    for i, series in enumerate(spec["series"]):
        name = str(series.get("name", f"series {i + 1}"))
        if kind == "bar":
            fig.add_trace(go.Bar(x=x, y=series["y"], name=name))
            continue
        if "lower" in series and "upper" in series:
            fig.add_trace(
                go.Scatter(
                    x=list(x) + list(x)[::-1],
                    y=list(series["upper"]) + list(series["lower"])[::-1],
                    fill="toself",
                    mode="lines",
                    fillcolor="rgba(37,99,235,0.15)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{name} interval",
                    showlegend=False,
                )
            )
        fig.add_trace(go.Scatter(x=x, y=series["y"], name=name, mode="lines"))
    return layout(
        fig,
        str(spec.get("title", "")),
        height=int(spec.get("height", 380)),
        xaxis_title=str(spec.get("x_title", "")),
        yaxis_title=str(spec.get("y_title", "")),
    )
