"""The report's building blocks: number formatting, tables, cards and the page collecting them.

Every cell goes through :func:`cell_text`, which never prints a Python ``dict`` or ``list``:
nested values are flattened into columns before they reach a table (``flatten_records``), and
anything left over is summarised in words.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "Num",
    "Page",
    "cards",
    "cell_text",
    "dec",
    "flatten_records",
    "fmt",
    "pct",
    "table",
]


def fmt(value: Any) -> str:
    """A value as text for people (4 significant digits, thousands separators).

    Args:
        value: Any scalar.

    Returns:
        The text.
    """
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


def cell_text(value: Any) -> str:
    """A table cell's text: scalars formatted, containers summarised (never their repr).

    Args:
        value: The cell's value.

    Returns:
        The text.
    """
    if isinstance(value, Mapping):
        if not value:
            return "–"
        return "; ".join(f"{k}: {cell_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if not value:
            return "–"
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return ", ".join(fmt(v) for v in value)
        return f"{len(value)} entries"
    return value if isinstance(value, str) else fmt(value)


class Num(str):
    """A number already formatted as text; right-aligned like other numbers."""

    __slots__ = ()


def pct(value: float | None, digits: int = 1) -> str:
    """A share as a right-aligned percentage.

    Args:
        value: A share in [0, 1] (``None``: a dash).
        digits: Decimals.

    Returns:
        The text.
    """
    return Num("–" if value is None else f"{value:.{digits}%}")


def dec(value: float | None, digits: int) -> str:
    """A right-aligned decimal.

    Args:
        value: The number (``None``: a dash).
        digits: Decimals.

    Returns:
        The text.
    """
    return Num("–" if value is None or value != value else f"{value:,.{digits}f}")


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    caption: str = "",
    numeric: bool = True,
    *,
    highlight: Sequence[bool] | None = None,
) -> str:
    """An HTML table; numbers right-aligned.

    Args:
        columns: Header cells.
        rows: Body rows.
        caption: Caption ("" for none).
        numeric: Right-align numbers.
        highlight: Per row, whether to emphasise it (e.g. the chosen model).

    Returns:
        HTML.
    """
    if not rows:
        return '<p class="empty">Nothing to show.</p>'

    def is_number(value: Any) -> bool:
        return numeric and (
            isinstance(value, Num)
            or (isinstance(value, int | float) and not isinstance(value, bool))
        )

    # A column is numeric (right-aligned, header too) when any of its cells is a number.
    numeric_columns = [
        any(is_number(row[j]) for row in rows if j < len(row)) for j in range(len(columns))
    ]
    right = ' class="n"'
    head = "".join(
        "<th" + (right if numeric_columns[j] else "") + f">{html.escape(c)}</th>"
        for j, c in enumerate(columns)
    )
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            cls = right if j < len(numeric_columns) and numeric_columns[j] else ""
            cells.append(f"<td{cls}>{html.escape(cell_text(value))}</td>")
        mark = ' class="hl"' if highlight is not None and highlight[i] else ""
        body.append(f"<tr{mark}>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rows_html = "".join(body)
    return f'<table class="t">{cap}<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Key figures as cards.

    Args:
        items: (label, value) pairs.

    Returns:
        HTML.
    """
    small = ' class="small"'
    inner = "".join(
        f'<div class="card"><b{small if len(v) > 11 else ""}>{html.escape(v)}</b>'
        f"<span>{html.escape(k)}</span></div>"
        for k, v in items
    )
    return f'<div class="cards">{inner}</div>'


def flatten_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flatten nested objects into columns (``metrics.HR@10``), so no cell holds a dict.

    Args:
        records: Rows as objects.

    Returns:
        Rows whose values are scalars or lists of scalars.
    """

    def walk(prefix: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner, out)
        elif isinstance(value, Mapping):
            out[prefix] = None
        else:
            out[prefix] = value

    flat = []
    for record in records:
        row: dict[str, Any] = {}
        walk("", record, row)
        flat.append(row)
    return flat


class Page:
    """Collects sections and figures (each figure gets a stable div id)."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str, str]] = []  # (anchor, title, body)
        self.n_figures = 0
        self.seconds: dict[str, float] = {}  # wall time per section
        self.cpu_seconds: dict[str, float] = {}  # this process' CPU time (all its threads)

    def figure(self, fig: go.Figure) -> str:
        """Embed a Plotly figure (the library is inlined once for the page).

        Args:
            fig: The figure.

        Returns:
            HTML.
        """
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
        """Add a section.

        Args:
            anchor: Its id (the navigation links to it).
            title: Heading (escaped here).
            lead: Text under the heading (HTML, already escaped by the caller).
            body: The section's HTML.
        """
        text = f'<p class="lead">{lead}</p>' if lead else ""
        self.sections.append((anchor, html.escape(title), text + body))

    def timed(self, name: str, build: Callable[[], None]) -> None:
        """Run a builder and record its wall and CPU time.

        Args:
            name: Timing key.
            build: The builder.
        """
        started, cpu = time.perf_counter(), time.process_time()
        build()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        used = time.process_time() - cpu
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + used
