"""``shopseq report``: one self-contained HTML file (Plotly inlined, works offline).

The page is the ordered list :data:`SECTIONS`: each entry is a title and a builder
``(page, ctx) -> None`` that adds its section (or nothing, when it has nothing to show). Adding a
section is one function and one line there. Builders share one :class:`ReportContext`, so
results one section computed (segments, actions present, the artifact files) are reused, not
recomputed, by the next. Files of other stages that no section claims are shown by the generic
artifact section at the end (docs/report.md). The file is written atomically.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from plotly.offline import get_plotlyjs

from shopseq.artifacts import atomic_write_bytes
from shopseq.report import analytics, forecasts, leaderboards, plans, plots
from shopseq.report.artifacts import KNOWN_ARTIFACTS, ArtifactTable, parse_artifact
from shopseq.report.context import ReportConfig, ReportContext
from shopseq.report.elements import Page, flatten_records, table
from shopseq.report.states import states_section
from shopseq.report.users import users_section
from shopseq.store import Store

__all__ = ["SECTIONS", "ReportConfig", "ReportSummary", "Section", "build_report", "write_report"]


@dataclass(frozen=True, slots=True)
class Section:
    """One section of the report.

    Attributes:
        name: Timing key (and what the section is about).
        build: Adds the section to the page (or nothing, without data for it).
    """

    name: str
    build: Callable[[Page, ReportContext], None]


def other_artifacts_section(page: Page, ctx: ReportContext) -> None:
    """Every artifact file no other section rendered, in the generic shapes of docs/report.md.

    Args:
        page: The page.
        ctx: The report's shared state (its warnings collect the files' problems).
    """
    for i, item in enumerate(ctx.unclaimed()):
        default = KNOWN_ARTIFACTS.get(
            item.name, item.name.removesuffix(".report.json").replace("_", " ")
        )
        section = parse_artifact(item.path, default)
        ctx.warnings.extend(section.warnings)
        body = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in section.warnings)
        body += "".join(_artifact_table(t) for t in section.tables)
        body += "".join(page.figure(plots.generic_chart(c)) for c in section.charts)
        if section.raw:
            body += f"<pre>{html.escape(section.raw)}</pre>"
        lead = html.escape(section.description) + (
            f' <span class="empty">({html.escape(str(section.source))})</span>'
        )
        page.section(f"artifact-{i}", section.title, lead, body)


def _artifact_table(spec: ArtifactTable) -> str:
    records = [dict(zip(spec.columns, row, strict=True)) for row in spec.rows]
    flat = flatten_records(records)
    columns: list[str] = []
    for record in flat:
        columns += [c for c in record if c not in columns]
    return table(columns, [[r.get(c) for c in columns] for r in flat], spec.title)


#: The report, in order. Each builder adds its section, or nothing when it has no data.
SECTIONS: tuple[Section, ...] = (
    Section("profile", analytics.profile_section),
    Section("funnel", analytics.funnel_section),
    Section("paths", analytics.paths_section),
    Section("transitions", analytics.transitions_section),
    Section("states", states_section),
    Section("retention", analytics.retention_section),
    Section("patterns", analytics.patterns_section),
    Section("rules", analytics.rules_section),
    Section("segments", analytics.segments_section),
    Section("nextitem", leaderboards.next_item_section),
    Section("users", users_section),
    Section("forecast_backtest", leaderboards.forecast_leaderboard_section),
    Section("forecasts", forecasts.forecasts_section),
    Section("plan", plans.plan_section),
    Section("other_artifacts", other_artifacts_section),
)


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What was written.

    Attributes:
        path: The HTML file.
        n_figures: Plotly figures in it.
        n_bytes: File size.
        seconds: Wall time per section.
        artifacts: Artifact files found.
        warnings: Problems found in artifact files.
        shared_seconds: Wall time of the results sections share (``ReportContext.seconds``;
            each also counted in the section that first asked for it).
        cpu_seconds: CPU time of this process (all its threads) per section.
    """

    path: Path
    n_figures: int
    n_bytes: int
    seconds: dict[str, float]
    artifacts: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    shared_seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


_CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 Inter,"Segoe UI",Helvetica,Arial,sans-serif; color:var(--ink);
       background:var(--bg); }
header { background:#0f172a; color:#fff; padding:22px 32px 14px; }
header h1 { margin:0 0 4px; font-size:24px; }
header p { margin:0; color:#cbd5e1; font-size:13px; }
nav { margin-top:12px; display:flex; flex-wrap:wrap; gap:6px 14px; }
nav a { color:#93c5fd; text-decoration:none; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:18px 24px 60px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px;
          padding:18px 22px; margin:18px 0; }
section h2 { margin:0 0 4px; font-size:19px; }
p.lead { margin:0 0 12px; color:var(--muted); font-size:13.5px; max-width:980px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(132px,1fr)); gap:10px;
         margin:10px 0 14px; }
.card { border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.card b { display:block; font-size:18px; white-space:nowrap; }
.card b.small { font-size:14px; padding-top:3px; }
.card span { color:var(--muted); font-size:12px; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(520px,1fr)); gap:14px; }
.grid2 > div { min-width:0; }  /* let Plotly size each chart to its column, not the reverse */
table.t { border-collapse:collapse; width:100%; font-size:13px; margin:6px 0 12px; }
table.t caption { text-align:left; font-weight:600; padding:4px 0; }
table.t th { text-align:left; color:var(--muted); font-weight:600; padding:5px 8px;
             border-bottom:2px solid var(--line); }
table.t td { border-bottom:1px solid var(--line); padding:4px 8px; vertical-align:top; }
table.t td.n, table.t th.n { text-align:right; font-variant-numeric:tabular-nums; }
table.t tr:nth-child(even) td { background:#f8fafc; }
table.t tr.hl td { background:#eff6ff; font-weight:600; }
.warn { background:#fef3c7; border:1px solid #f59e0b; border-radius:6px; padding:6px 10px;
        font-size:13px; margin:6px 0; }
.empty { color:var(--muted); font-style:italic; }
pre { background:#f1f5f9; padding:10px; overflow:auto; max-height:360px; font-size:12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:20px; }
"""


# Each chart is drawn as soon as its <div> is parsed, when the grid around it may not have its
# second column yet: the first chart of a two-column row was drawn full width and ran under its
# neighbour (the Dataset section's table). Once the page is laid out, fit every chart to its box.
_RESIZE = (
    "window.addEventListener('load', function () {"
    " document.querySelectorAll('.js-plotly-plot').forEach(function (d) {"
    " Plotly.Plots.resize(d); }); });"
)


def build_report(
    store: Store, config: ReportConfig, sections: tuple[Section, ...] = SECTIONS
) -> tuple[str, ReportSummary]:
    """Run every section and render the page.

    Args:
        store: A prepared event store.
        config: Analyses' settings and artifact directories.
        sections: The sections, in order (default: :data:`SECTIONS`).

    Returns:
        The HTML text and a summary (its ``path`` is empty until written).
    """
    ctx = ReportContext(store, config)
    page = Page()
    for section in sections:
        page.timed(section.name, lambda s=section: s.build(page, ctx))  # type: ignore[misc]
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = html.escape(str(store.path) if store.path else "in-memory store")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t, _ in page.sections)
    body = "".join(f'<section id="{a}"><h2>{t}</h2>{b}</section>' for a, t, b in page.sections)
    title = html.escape(config.title)
    text = (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head>"
        f'<body data-figures="{page.n_figures}"><header><h1>{title}</h1>'
        f"<p>{where} · generated {created}</p><nav>{nav}</nav></header><main>{body}</main>"
        "<footer>Made by shopseq. Definitions: docs/analytics.md; reading this report: "
        f"docs/report.md.</footer><script>{_RESIZE}</script></body></html>\n"
    )
    ctx.warnings.extend(a.error for a in ctx.artifacts if a.error)
    summary = ReportSummary(
        path=Path(),
        n_figures=page.n_figures,
        n_bytes=len(text.encode()),
        seconds=page.seconds,
        artifacts=tuple(a.path for a in ctx.artifacts),
        warnings=tuple(dict.fromkeys(ctx.warnings)),
        shared_seconds=dict(ctx.seconds),
        cpu_seconds=page.cpu_seconds,
    )
    return text, summary


def write_report(store: Store, path: Path, config: ReportConfig) -> ReportSummary:
    """Build the report and write it atomically to ``path``.

    Args:
        store: A prepared event store.
        path: Destination HTML file.
        config: Settings.

    Returns:
        What was written.
    """
    text, summary = build_report(store, config)
    atomic_write_bytes(path, text.encode())
    return ReportSummary(
        path=path,
        n_figures=summary.n_figures,
        n_bytes=summary.n_bytes,
        seconds=summary.seconds,
        artifacts=summary.artifacts,
        warnings=summary.warnings,
        shared_seconds=summary.shared_seconds,
        cpu_seconds=summary.cpu_seconds,
    )
