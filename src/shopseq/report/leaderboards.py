"""Model leaderboards as a person reads them: the next-item leaderboard and the forecast backtest.

Each section claims its artifact file only when it recognises the shape the stage writes
(``nextitem.leaderboard.Leaderboard.to_dict``; ``runs.forecast.leaderboard_records``); a file in
the generic report shape (docs/report.md) is left to the generic section.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from shopseq.report import charts
from shopseq.report.context import ReportContext
from shopseq.report.elements import Num, Page, dec, pct, table

__all__ = ["backtest_rows", "forecast_leaderboard_section", "next_item_section"]


def _is_next_item_board(data: Any) -> bool:
    rows = data.get("rows") if isinstance(data, Mapping) else None
    return (
        isinstance(rows, list)
        and bool(rows)
        and all(isinstance(r, Mapping) and isinstance(r.get("metrics"), Mapping) for r in rows)
    )


def _metric_at(row: Mapping[str, Any], prefix: str, k: int) -> str | None:
    name = f"{prefix}@{k}"
    return name if name in row["metrics"] else None


def next_item_section(page: Page, ctx: ReportContext) -> None:
    """Next-item leaderboard: one readable table and a bar chart with intervals.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    item = ctx.artifact("leaderboard.json")
    if item is None or not _is_next_item_board(item.data):
        return
    ctx.claim(item)
    data = item.data
    headline = str(data.get("compare_metric") or "NDCG@10")
    rows = sorted(data["rows"], key=lambda r: -float(r["metrics"].get(headline) or 0.0))
    best_baseline = str(data.get("best_baseline", ""))
    k = int(headline.split("@")[1]) if "@" in headline else 10
    hr = _metric_at(rows[0], "HR", k)
    ndcg = _metric_at(rows[0], "NDCG", k)
    shown = [m for m in dict.fromkeys([hr, ndcg, headline]) if m]
    columns = ["model"]
    for metric in shown:
        columns.append(f"{metric} [95 % CI]" if metric == headline else metric)
    columns += [f"vs {best_baseline} ({headline})", "p", "fit s", "cases"]
    body_rows = []
    for r in rows:
        name = f"{r['model']} (baseline)" if r.get("baseline") else str(r["model"])
        cells: list[Any] = [name]
        for metric in shown:
            value = r["metrics"].get(metric)
            if metric == headline:
                lo, hi = r.get("ci_low", {}).get(metric), r.get("ci_high", {}).get(metric)
                ci = f" [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None else ""
                cells.append(Num(f"{value:.4f}{ci}" if value is not None else "–"))
            else:
                cells.append(dec(value, 4))
        test = r.get("vs_baseline")
        if isinstance(test, Mapping):
            cells += [Num(f"{test['diff']:+.4f}"), Num(_p(test.get("p_value")))]
        else:
            cells += ["reference" if r["model"] == best_baseline else "–", "–"]
        cells += [dec(r.get("fit_seconds"), 2), r.get("n_cases")]
        body_rows.append(cells)
    best = rows[0]
    chart = charts.leaderboard_bars(
        [str(r["model"]) for r in rows],
        [float(r["metrics"].get(headline) or 0.0) for r in rows],
        [r.get("ci_low", {}).get(headline) for r in rows],
        [r.get("ci_high", {}).get(headline) for r in rows],
        [bool(r.get("baseline")) for r in rows],
        headline,
    )
    protocol = html.escape(str(rows[0].get("protocol", "")))
    lead = (
        f"{html.escape(str(data.get('dataset', '')))}, split {html.escape(str(data.get('split')))},"
        f" protocol {protocol}; {rows[0].get('n_cases', 0):,} test cases. Best: "
        f"<b>{html.escape(str(best['model']))}</b> ({headline} "
        f"{float(best['metrics'].get(headline) or 0):.4f}). Every model is compared with the "
        f"best baseline, <b>{html.escape(best_baseline)}</b>, on the same cases (paired "
        "sign-flip test; p under 0.05: the difference is unlikely to be chance)."
    )
    body = table(columns, body_rows, highlight=[r is best for r in rows]) + page.figure(chart)
    page.section("nextitem", "Next-item models", lead, body)


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _is_backtest_board(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(r, Mapping) and "model" in r and "mase" in r for r in data)
    )


def backtest_rows(board: list[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The backtest leaderboard as readable columns and rows (best MASE first).

    Args:
        board: ``forecast_leaderboard.json`` records.

    Returns:
        Columns and rows.
    """
    levels = sorted(int(k.removeprefix("coverage-")) for k in board[0] if k.startswith("coverage-"))
    columns = ["model", "MASE", "sMAPE %", "RMSE"]
    columns += [f"coverage {lv} %" for lv in levels]
    columns += ["beats naive on", "fit s", "failures"]
    rows = []
    ordered = sorted(board, key=lambda r: (r.get("mase") is None, r.get("mase") or 0.0))
    for r in ordered:
        name = str(r["model"])
        label = {"selected": "selected (best per series)", "ensemble": "ensemble (chosen)"}.get(
            name, name
        )
        row: list[Any] = [
            label,
            dec(r.get("mase"), 3),
            dec(r.get("smape"), 1),
            dec(r.get("rmse"), 2),
        ]
        row += [pct(r.get(f"coverage-{lv}"), 0) for lv in levels]
        beats = r.get("beats_baseline")
        row += [pct(beats, 0) + " of series" if beats is not None else "–"]
        row += [dec(r.get("seconds"), 1), r.get("failures", 0)]
        rows.append(row)
    return columns, rows


def forecast_leaderboard_section(page: Page, ctx: ReportContext) -> None:
    """Forecast backtest: every row scored on the same folds, best first, with a chart.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    item = ctx.artifact("forecast_leaderboard.json")
    if item is None or not _is_backtest_board(item.data):
        return
    ctx.claim(item)
    board = item.data
    columns, rows = backtest_rows(board)
    ordered = sorted(board, key=lambda r: (r.get("mase") is None, r.get("mase") or 0.0))
    chart = charts.leaderboard_bars(
        [str(r["model"]) for r in ordered],
        [float(r.get("mase") or 0.0) for r in ordered],
        [None] * len(ordered),
        [None] * len(ordered),
        [r["model"] == "seasonal_naive" for r in ordered],
        "MASE",
        lower_is_better=True,
    )
    first = board[0]
    folds = str(first.get("folds", ""))
    chosen = "ensemble" if any(r["model"] == "ensemble" for r in board) else None
    lead = (
        f"Backtest of {html.escape(str(first.get('metric', '')))} per "
        f"{html.escape(str(first.get('freq', '')))}: rolling origins, every row scored on the "
        f"same folds ({html.escape(folds)}) so the comparison is like for like. MASE below 1 "
        "beats repeating last season on that series' own history; "
        "<i>ensemble</i> and <i>selected</i> are chosen per series on earlier folds only. "
        "Closed days are not scored (their forecast is 0 by rule)."
    )
    body = table(
        columns,
        rows,
        highlight=[r["model"] == chosen for r in ordered],
    )
    page.section("forecast-backtest", "Forecast backtest", lead, body + page.figure(chart))
