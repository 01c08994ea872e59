"""Rich renderings of reports (library code returns data; only the CLI prints)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopseq.ingest import IngestReport
from shopseq.ingest.items import ItemJoin
from shopseq.nextitem.leaderboard import Leaderboard
from shopseq.prepare import PrepareReport
from shopseq.prepare.profile import DatasetProfile, Quantiles

__all__ = ["show_ingest", "show_items", "show_leaderboard", "show_prepare", "show_profile"]


def _n(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def show_ingest(console: Console, report: IngestReport) -> None:
    """Print one row per file and the reconciled totals.

    Args:
        console: Where to print.
        report: The ingest report.
    """
    table = Table(title="Ingest", show_footer=True)
    table.add_column("file", footer="total", overflow="fold")
    table.add_column("read", justify="right", footer=_n(report.rows_read))
    table.add_column("accepted", justify="right", footer=_n(report.rows_accepted))
    table.add_column("quarantined", justify="right", footer=_n(report.rows_quarantined))
    table.add_column("reasons")
    table.add_column("rows/s", justify="right")
    for f in report.files:
        if f.already_ingested:
            table.add_row(
                escape(f.path.name),
                _n(f.rows_read),
                "-",
                "-",
                "[yellow]already ingested (same SHA-256): skipped[/]",
                "-",
            )
            continue
        reasons = "\n".join(f"{k} {v:,}" for k, v in sorted(f.by_reason.items()))
        speed = _n(round(f.rows_read / f.seconds)) if f.seconds else "-"
        table.add_row(
            escape(f.path.name),
            _n(f.rows_read),
            _n(f.rows_accepted),
            _n(f.rows_quarantined),
            reasons,
            speed,
        )
    console.print(table)
    ok = report.rows_read == report.rows_accepted + report.rows_quarantined
    console.print(
        f"read {report.rows_read:,} = accepted {report.rows_accepted:,} + quarantined "
        f"{report.rows_quarantined:,}" + (" [green]✓[/]" if ok else " [red]✗ MISMATCH[/]")
    )


def show_items(console: Console, joined: ItemJoin) -> None:
    """Print what reading and joining an item side table did.

    Args:
        console: Where to print.
        joined: The outcome of ``ingest.items.join_items``.
    """
    rows = joined.items
    kept = rows.table.num_rows
    ok = rows.rows_read == kept + len(rows.rejected)
    reasons: dict[str, int] = {}
    for _, reason in rows.rejected:
        reasons[reason] = reasons.get(reason, 0) + 1
    mapped = ", ".join(f"{c}={s}" for c, s in rows.mapping.items())
    console.print(
        f"items {escape(rows.path.name)} ({escape(mapped)}): read {rows.rows_read:,} = kept "
        f"{kept:,} + rejected {len(rows.rejected):,}"
        + (" [green]✓[/]" if ok else " [red]✗ MISMATCH[/]")
        + (
            f" ({escape(', '.join(f'{r} {n:,}' for r, n in sorted(reasons.items())))})"
            if reasons
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    for line, reason in rows.rejected[:5]:
        console.print(f"  {escape(rows.path.name)}:{line}: {reason}", highlight=False)
    console.print(
        f"joined onto {joined.events:,} events: category filled on {joined.category_filled:,}, "
        f"price on {joined.price_filled:,}; {joined.events_without_item:,} events have an item "
        "the table does not list",
        highlight=False,
    )


def show_prepare(console: Console, report: PrepareReport) -> None:
    """Print what each prepare step removed or filled.

    Args:
        console: Where to print.
        report: The prepare report.
    """
    table = Table(title="Prepare")
    table.add_column("step")
    table.add_column("effect", justify="right")
    table.add_column("seconds", justify="right")
    s = report.seconds
    table.add_row("events in", _n(report.rows_in), "")
    table.add_row("exact duplicates removed", _n(report.exact_duplicates), f"{s['dedupe']:.2f}")
    table.add_row("rapid repeats removed", _n(report.repeats), "")
    table.add_row(
        f"bot users removed ({report.bot_users:,})", _n(report.bot_events), f"{s['bots']:.2f}"
    )
    for column, count in report.filled.items():
        table.add_row(f"{column} filled", _n(count), "")
    table.add_row("sessions", _n(report.sessions), f"{s['sessionize']:.2f}")
    table.add_row("events out", _n(report.rows_out), f"{s['total']:.2f}")
    console.print(table)


def _quantile_cells(q: Quantiles | None) -> list[str]:
    if q is None:
        return ["-"] * 5
    return [f"{q.mean:,.1f}", _n(q.p50), _n(q.p90), _n(q.p99), _n(q.max)]


def show_profile(console: Console, profile: DatasetProfile) -> None:
    """Print the dataset profile as tables.

    Args:
        console: Where to print.
        profile: The profile.
    """
    overview = Table(title=f"Dataset ({escape(profile.table)})", show_header=False)
    overview.add_column("what")
    overview.add_column("value", justify="right")
    rows = [
        ("files ingested", _n(profile.n_files)),
        ("rows read", _n(profile.rows_read)),
        ("rows quarantined", _n(profile.rows_quarantined)),
        ("events accepted", _n(profile.raw_events)),
        ("exact duplicates among them", _n(profile.exact_duplicates)),
        ("events", _n(profile.n_events)),
        ("users", _n(profile.n_users)),
        ("items", _n(profile.n_items)),
        ("categories", _n(profile.n_categories)),
        ("sessions", _n(profile.n_sessions)),
        ("first event", str(profile.first_ts)),
        ("last event", str(profile.last_ts)),
        ("user-item sparsity", f"{profile.sparsity:.6f}"),
        (
            "return rate (returns / purchases)",
            "-" if profile.return_rate is None else f"{profile.return_rate:.2%}",
        ),
    ]
    for what, value in rows:
        overview.add_row(what, value)
    console.print(overview)

    actions = Table(title="Events per action")
    actions.add_column("action")
    actions.add_column("events", justify="right")
    actions.add_column("share", justify="right")
    for action, count in profile.events_by_action.items():
        actions.add_row(escape(action), _n(count), f"{count / max(profile.n_events, 1):.2%}")
    console.print(actions)

    dist = Table(title="Events per group")
    for name in ("group", "mean", "p50", "p90", "p99", "max"):
        dist.add_column(name, justify="left" if name == "group" else "right")
    dist.add_row("per user", *_quantile_cells(profile.events_per_user))
    dist.add_row("per session", *_quantile_cells(profile.events_per_session))
    console.print(dist)

    if profile.quarantine_by_reason:
        quarantine = Table(title="Quarantine")
        quarantine.add_column("reason")
        quarantine.add_column("rows", justify="right")
        for reason, count in profile.quarantine_by_reason.items():
            quarantine.add_row(escape(reason), _n(count))
        console.print(quarantine)


def show_leaderboard(console: Console, board: Leaderboard) -> None:
    """Print a leaderboard: metrics, NDCG@10's 95 % interval, coverage, timing, paired test.

    Args:
        console: Where to print.
        board: The leaderboard.
    """
    first = board.rows[0] if board.rows else None
    cases = first.n_cases if first else 0
    protocol = first.protocol if first else ""
    # Under 100 columns (a log file, a laptop terminal) HR@20 and MRR@20 are left to the
    # leaderboard files and the borders go, so every cell prints whole at 80 columns.
    narrow = console.width < 100
    table = Table(
        title=escape(f"{board.dataset}: {board.split}, {protocol}") + f", {cases:,} cases",
        caption="* baseline; HR@20 and MRR@20 in leaderboard.json / .csv" if narrow else None,
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
        pad_edge=not narrow,
        collapse_padding=narrow,
    )
    table.add_column("model" if narrow else "model (* baseline)", no_wrap=True)
    names = ["HR@10", "NDCG@10", "95% CI"] + ([] if narrow else ["HR@20", "MRR@20"])
    for name in (*names, "cover", "fit s", f"vs {board.best_baseline}"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in board.rows:
        low, high = row.ci_low.get("NDCG@10"), row.ci_high.get("NDCG@10")
        test = row.vs_baseline
        at20 = [f"{row.metrics.get(k, 0.0):.4f}" for k in ("HR@20", "MRR@20")]
        table.add_row(
            escape(row.model + ("*" if row.baseline else "")),
            f"{row.metrics.get('HR@10', 0.0):.4f}",
            f"{row.metrics.get('NDCG@10', 0.0):.4f}",
            "-" if low is None or high is None else f"{low:.3f}-{high:.3f}",
            *([] if narrow else at20),
            "-" if row.coverage is None else f"{row.coverage:.0%}",
            "-" if row.fit_seconds is None else f"{row.fit_seconds:.1f}",
            "-" if test is None else f"{test.diff:+.4f} p={test.p_value:.2g}",
        )
    console.print(table)
