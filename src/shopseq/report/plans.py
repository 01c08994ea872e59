"""The marketing plan: budget by target and day, what it is expected to bring, and why.

Reads ``plan.json`` as ``plan.budget.Plan.to_json`` writes it (``kind: shopseq.plan``). A plan
in another shape (an older flat list of rows) is left to the generic section.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from shopseq.report import charts
from shopseq.report.context import ReportContext
from shopseq.report.elements import Num, Page, dec, table

__all__ = ["plan_section"]

#: Allocation rows listed with their reasons (largest budget first).
MAX_REASONS = 15


def _rng(entry: Mapping[str, Any], key: str, digits: int = 1) -> str:
    value = entry.get(key)
    if value is None:
        return Num("–")
    lo, hi = entry.get(f"{key}_lo"), entry.get(f"{key}_hi")
    if lo is None or hi is None:
        return Num(f"{value:,.{digits}f}")
    return Num(f"{value:,.{digits}f} [{lo:,.{digits}f}, {hi:,.{digits}f}]")


def plan_section(page: Page, ctx: ReportContext) -> None:
    """Plan: heatmap by target and day, per-target outcome with ranges, reasons.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    item = ctx.artifact("plan.json")
    data = item.data if item is not None else None
    if item is None or not (isinstance(data, Mapping) and data.get("kind") == "shopseq.plan"):
        return
    ctx.claim(item)
    rows = list(data.get("rows") or [])
    targets = list(data.get("targets") or [])
    response = data.get("mode") == "response"
    level = data.get("level", 80)
    days = sorted({str(r["demand_date"])[:10] for r in rows})
    funded = [t["target"] for t in targets if t.get("funded")]
    grid = [
        [sum(r["budget"] for r in rows if r["target"] == name and str(r["demand_date"])[:10] == d)
         for d in days]
        for name in funded
    ]  # fmt: skip
    body = ""
    if response and data.get("comparison"):
        body += '<div class="grid2"><div>' + page.figure(charts.uplift_comparison(
            data["comparison"])) + "</div><div>"  # fmt: skip
        body += _curves_table(data.get("curves") or []) + "</div></div>"
    if funded and days:
        body += page.figure(
            charts.plan_heatmap(funded, days, grid, "Budget by target and day the spend acts")
        )
    value_key = "uplift_revenue" if response else "revenue"
    title = (
        f"Budget and expected extra revenue per target ({level} % range)"
        if response
        else f"Budget and forecast revenue per target ({level} % range; baseline, not uplift)"
    )
    body += page.figure(charts.plan_target_bars(targets, value_key, title))
    columns = ["target", "budget", "forecast orders", "forecast revenue"]
    if response:
        columns += ["extra orders", "extra revenue", "marginal return"]
    columns += ["funded"]
    table_rows = []
    for t in targets:
        row: list[Any] = [
            t["target"],
            dec(t.get("budget"), 2),
            _rng(t, "orders"),
            _rng(t, "revenue", 0),
        ]
        if response:
            row += [_rng(t, "uplift_orders"), _rng(t, "uplift_revenue", 0)]
            row += [dec(t.get("marginal_return"), 2)]
        row += ["yes" if t.get("funded") else t.get("why", "no")]
        table_rows.append(row)
    body += table(columns, table_rows, f"Per target over the horizon ({level} % ranges)")
    reasons = [
        [
            str(r["spend_date"])[:10],
            str(r["demand_date"])[:10],
            r["target"],
            dec(r["budget"], 2),
            r["reason"],
        ]
        for r in rows[:MAX_REASONS]
    ]
    body += table(
        ["book on", "acts on", "target", "budget", "why"],
        reasons,
        f"The {min(len(rows), MAX_REASONS)} largest allocations and the reason for each",
    )
    allocated = data.get("allocated", data.get("budget"))
    lead = (
        f"Budget {data.get('budget', 0):,.2f} ({html.escape(str(data.get('mode')))} mode, rule "
        f"{html.escape(str(data.get('rule')))}); allocated {allocated:,.2f}. "
        + html.escape(str(data.get("note", "")))
    )
    page.section("plan", "Plan", lead, body)


def _with_range(curve: Mapping[str, Any], name: str, digits: int) -> str:
    value = curve[name]
    lo, hi = (curve.get("intervals") or {}).get(name, (None, None))
    if lo is None or hi is None:
        return Num(f"{value:,.{digits}f}")
    return Num(f"{value:,.{digits}f} [{lo:,.{digits}f}, {hi:,.{digits}f}]")


def _curves_table(curves: list[Mapping[str, Any]]) -> str:
    rows = [
        [
            c["target"],
            _with_range(c, "beta", 1),
            _with_range(c, "half", 0),
            _with_range(c, "decay", 2),
            _with_range(c, "shape", 2),
            c.get("n_periods"),
        ]
        for c in curves
    ]
    level = curves[0].get("level", 95) if curves else 95
    return table(
        [
            "target",
            "max extra orders/day",
            "half-saturation spend/day",
            "carry-over",
            "shape",
            "days fitted",
        ],
        rows,
        f"Response curves fitted on the spend history ({level} % intervals)",
    )
