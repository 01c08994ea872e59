"""HTML building blocks shared by the report's sections: cells, tables, cards, the page."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = ["Num", "Page", "cards", "dec", "fmt", "pct", "table"]


def fmt(value: Any) -> str:
    """Format a cell value (thousands separators, 4 significant digits, – for missing)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    return str(value)


class Num(str):
    """A number already formatted as text; right-aligned like other numbers."""

    __slots__ = ()


def pct(value: float | None) -> str:
    """Format a share as a right-aligned percentage."""
    return Num("–" if value is None else f"{value:.1%}")


def dec(value: float | None, digits: int) -> str:
    """Format a number with ``digits`` decimals, right-aligned."""
    return Num("–" if value is None else f"{value:,.{digits}f}")


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "", numeric: bool = True
) -> str:
    """Render an HTML table (numbers right-aligned unless ``numeric`` is false)."""
    if not rows:
        return '<p class="empty">Nothing to show.</p>'

    def is_number(value: Any) -> bool:
        return numeric and (
            isinstance(value, Num)
            or (isinstance(value, int | float) and not isinstance(value, bool))
        )

    right = ' class="n"'
    head = "".join(
        "<th" + (right if is_number(v) else "") + f">{html.escape(c)}</th>"
        for c, v in zip(columns, rows[0], strict=False)
    )
    body = []
    for row in rows:
        cells = []
        for value in row:
            text = value if isinstance(value, str) else fmt(value)
            cls = ' class="n"' if is_number(value) else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rows_html = "".join(body)
    return f'<table class="t">{cap}<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Render headline numbers as cards (label, value)."""
    small = ' class="small"'
    inner = "".join(
        f'<div class="card"><b{small if len(v) > 11 else ""}>{html.escape(v)}</b>'
        f"<span>{html.escape(k)}</span></div>"
        for k, v in items
    )
    return f'<div class="cards">{inner}</div>'


class Page:
    """Collects sections and figures (each figure gets a stable div id)."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str, str]] = []  # (anchor, title, body)
        self.n_figures = 0
        self.seconds: dict[str, float] = {}

    def figure(self, fig: go.Figure) -> str:
        """Embed a figure (without Plotly itself, which the page inlines once)."""
        self.n_figures += 1
        return str(
            fig.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"fig-{self.n_figures}",
                config={"displaylogo": False, "responsive": True},
            )
        )

    def section(self, anchor: str, title: str, lead: str, body: str) -> None:
        """Add a section."""
        text = f'<p class="lead">{lead}</p>' if lead else ""
        self.sections.append((anchor, title, text + body))

    def timed(self, name: str, build: Callable[[], None]) -> None:
        """Run a section builder and record its wall time."""
        started = time.perf_counter()
        build()
        self.seconds[name] = time.perf_counter() - started
