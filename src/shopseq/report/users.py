"""Per-user predictions (``shopseq predict``): leaderboard, calibration, gains, top customers.

Reads every ``leaderboard.json`` a predict run writes (``runs.predict.report_artifact``: the
report's generic shape plus ``leaderboard``, the ``UserLeaderboard.to_dict`` of the run), one
section per task (the demo writes churn and CLV). The charts are the run's own specs (calibration
and gains on the test snapshot for binary tasks, spend by decile for CLV); the table of the
highest scores carries each customer's reasons as the run wrote them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from shopseq.report import plots
from shopseq.report.context import ReportContext
from shopseq.report.elements import Num, Page, dec, flatten_records, table

__all__ = ["is_predict_artifact", "users_section"]

#: Rows of the highest-scored customers shown (the run writes 20).
MAX_TOP = 20


def is_predict_artifact(data: Any) -> bool:
    """Whether ``data`` is the ``leaderboard.json`` of a ``shopseq predict`` run.

    Args:
        data: Parsed JSON.

    Returns:
        True for that shape.
    """
    board = data.get("leaderboard") if isinstance(data, Mapping) else None
    rows = board.get("rows") if isinstance(board, Mapping) else None
    return (
        isinstance(board, Mapping)
        and isinstance(rows, list)
        and bool(rows)
        and {"task", "primary", "chosen"} <= set(board)
        and all(isinstance(r, Mapping) and isinstance(r.get("test"), Mapping) for r in rows)
    )


def _board_table(board: Mapping[str, Any]) -> str:
    primary = str(board["primary"])
    higher = bool(board.get("higher_is_better", True))
    rows = [r for r in board["rows"] if r["test"].get(primary) is not None]
    rows.sort(key=lambda r: -float(r["test"][primary]) if higher else float(r["test"][primary]))
    metrics = [primary] + [m for m in rows[0]["test"] if m != primary] if rows else [primary]
    best_baseline = str(board.get("best_baseline", ""))
    columns = ["model", f"{primary} [95 % CI]", *metrics[1:], f"vs {best_baseline}", "p"]
    body = []
    for r in rows:
        name = str(r["model"]) + (" (baseline)" if r.get("baseline") else "")
        value = float(r["test"][primary])
        ci = r.get("ci") or (None, None)
        interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if None not in ci[:2] else ""
        cells: list[Any] = [name, Num(f"{value:.3f}{interval}")]
        cells += [dec(r["test"].get(m), 3) for m in metrics[1:]]
        versus = r.get("vs_best_baseline")
        if isinstance(versus, Mapping):
            p = versus.get("p_value")
            cells += [Num(f"{versus['diff']:+.3f}"), Num("–" if p is None else f"{p:.2g}")]
        else:
            cells += ["reference" if r["model"] == best_baseline else "–", "–"]
        body.append(cells)
    chosen = str(board.get("chosen"))
    return table(
        columns,
        body,
        f"Test snapshot ({board.get('n_test', 0):,} examples); highlighted: chosen on validation",
        highlight=[r["model"] == chosen for r in rows],
    )


def _top_table(data: Mapping[str, Any], task: str) -> str:
    tables = [t for t in data.get("tables") or [] if isinstance(t, Mapping)]
    top = next((t for t in tables if "reason" in str(t.get("title", "")).lower()), None)
    records = [r for r in (top or {}).get("rows") or [] if isinstance(r, Mapping)][:MAX_TOP]
    if not records:
        return ""
    flat = flatten_records(records)
    present = {c for record in flat for c in record}
    columns: list[str] = [k for k in ("user_id", "session_id", "k") if k in present]  # who first
    for record in flat:
        columns += [c for c in record if c not in columns and c != "reasons"]
    columns.append("reasons")
    rows = [
        [dec(r.get(c), 3) if isinstance(r.get(c), float) else r.get(c) for c in columns]
        for r in flat
    ]
    who = "customers most at risk" if task == "churn" else "highest scores"
    return table(columns, rows, f"The {len(rows)} {who} now, with the reasons for each score")


def users_section(page: Page, ctx: ReportContext) -> None:
    """One section per predict run: readable leaderboard, its charts, the top customers.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    while (item := ctx.artifact("leaderboard.json", accept=is_predict_artifact)) is not None:
        ctx.claim(item)
        data = item.data
        board = data["leaderboard"]
        task = str(board["task"])
        figures = []
        for spec in data.get("charts") or []:
            try:
                figures.append(page.figure(plots.generic_chart(spec)))
            except (KeyError, TypeError, ValueError) as err:
                ctx.warnings.append(f"{item.path}: chart {spec.get('title', '?')!r} skipped: {err}")
        grid = '<div class="grid2">' + "".join(f"<div>{f}</div>" for f in figures) + "</div>"
        skipped = board.get("skipped_baselines") or {}
        lead = html.escape(str(data.get("description", "")))
        if skipped and "left out" not in lead:
            lead += " " + html.escape("; ".join(f"{k} left out: {v}" for k, v in skipped.items()))
        body = _board_table(board) + (grid if figures else "") + _top_table(data, task)
        page.section(f"users-{task}", f"Per-user predictions: {task}", lead, body)
