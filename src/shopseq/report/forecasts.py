"""Forecasts as fan charts: recent history, the forecast and its 80/95 % bands, closed days.

Reads ``forecast_series.json`` (``runs.forecast.series_records``: history, forecast and the model
chosen per series); without it, ``forecasts.json``'s flat records still give fans without
history. A per-series table says which model was chosen and how it did in the backtest.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from shopseq.report import charts
from shopseq.report.context import ReportContext
from shopseq.report.elements import Page, dec, table

__all__ = ["forecasts_section"]

#: Fan charts drawn at most (the largest series first); the table lists every series.
MAX_FANS = 12


def _label(sid: str) -> str:
    return sid.split("/", 1)[1] if "/" in sid else sid


def _from_records(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``forecasts.json`` records -> the ``forecast_series.json`` shape (no history)."""
    by_id: dict[str, dict[str, Any]] = {}
    levels = sorted(int(k.removeprefix("lo-")) for k in records[0] if k.startswith("lo-"))
    for r in records:
        entry = by_id.setdefault(
            str(r["unique_id"]),
            {
                "id": str(r["unique_id"]),
                "chosen": r.get("model"),
                "forecast": {"ds": [], "mean": [], "closed": []}
                | {f"{s}-{lv}": [] for lv in levels for s in ("lo", "hi")},
            },
        )
        fc = entry["forecast"]
        fc["ds"].append(r["ds"])
        fc["mean"].append(r["mean"])
        fc["closed"].append(bool(r.get("closed", False)))
        for lv in levels:
            fc[f"lo-{lv}"].append(r[f"lo-{lv}"])
            fc[f"hi-{lv}"].append(r[f"hi-{lv}"])
    return {"levels": levels, "series": list(by_id.values())}


def _is_series_file(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("kind") == "shopseq.forecast"


def _is_records(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(r, Mapping) and {"unique_id", "ds", "mean"} <= set(r) for r in data)
    )


def forecasts_section(page: Page, ctx: ReportContext) -> None:
    """One fan chart per series and the chosen model per series.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    rich = ctx.artifact("forecast_series.json")
    flat = ctx.artifact("forecasts.json")
    if rich is not None and _is_series_file(rich.data):
        data = rich.data
        ctx.claim(rich)
        if flat is not None and _is_records(flat.data):
            ctx.claim(flat)  # the same forecasts, already drawn from forecast_series.json
    elif flat is not None and _is_records(flat.data):
        data = _from_records(flat.data)
        ctx.claim(flat)
    else:
        return
    series = list(data["series"])
    levels = [int(lv) for lv in data.get("levels", [80, 95])]

    def size(entry: Mapping[str, Any]) -> float:
        return float(sum(entry["forecast"]["mean"]))

    fans = sorted(series, key=lambda e: (e["id"] != "total", -size(e)))[:MAX_FANS]
    metric = html.escape(str(data.get("metric", "")))
    figures = []
    for entry in fans:
        title = f"{_label(entry['id'])}: {metric} · {entry.get('chosen') or ''}"
        figures.append(page.figure(charts.fan_chart(entry, levels, title)))
    grid = '<div class="grid2">' + "".join(f"<div>{f}</div>" for f in figures) + "</div>"
    has_scores = any(e.get("backtest_mase") is not None for e in series)
    columns = ["series", "chosen model(s)", "intermittent", "forecast total"]
    if has_scores:
        columns += ["backtest MASE (chosen)", "seasonal naive", "better than naive"]
    rows = []
    for entry in series:
        row: list[Any] = [
            _label(entry["id"]),
            str(entry.get("chosen") or "–").replace("+", " + "),
            bool(entry.get("intermittent", False)),
            dec(size(entry), 1),
        ]
        if has_scores:
            mine, naive = entry.get("backtest_mase"), entry.get("naive_mase")
            row += [dec(mine, 3), dec(naive, 3)]
            row += [None if mine is None or naive is None else bool(mine < naive)]
        rows.append(row)
    notes = []
    if data.get("closures"):
        notes.append(
            f"Closures: {html.escape(str(data['closures']))} — forecast 0 with no width, "
            "marked ✕ on the charts."
        )
    if data.get("gap_periods"):
        notes.append(f"{data['gap_periods']} gap periods (nothing logged) in the history.")
    if data.get("reconciled"):
        notes.append(f"Categories reconciled to the total ({html.escape(data['reconciled'])}).")
    skipped = data.get("skipped") or {}
    if skipped:
        notes.append(
            "Skipped: "
            + "; ".join(f"{html.escape(k)} ({html.escape(str(v))})" for k, v in skipped.items())
        )
    horizon = data.get("horizon") or len(series[0]["forecast"]["ds"])
    lead = (
        f"{len(series)} series of {metric or 'demand'}, {horizon} periods ahead; shaded: "
        f"{' and '.join(f'{lv} %' for lv in sorted(levels))} intervals (clipped at 0 for counts). "
        + " ".join(notes)
    )
    if len(series) > len(fans):
        lead += f" Charts for the {len(fans)} largest series; the table lists all."
    body = grid + table(columns, rows, "Model chosen per series (backtest, like-for-like folds)")
    page.section("forecasts", "Forecasts", lead, body)
