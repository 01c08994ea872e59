"""``shopseq report``: one self-contained HTML file (Plotly inlined, works offline).

Sections: dataset profile, funnel, paths and flows, transitions, intent states (HMM, in
``report/states.py``), retention, sequential patterns, association rules, segments, then any
artifacts of other stages found by ``report.artifacts``. Shared HTML helpers: ``report/markup.py``.
Each analysis runs once on the prepared events; the file is written atomically.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
from plotly.offline import get_plotlyjs
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze import (
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    RetentionConfig,
    RuleConfig,
    SegmentConfig,
    StatesConfig,
    TransitionConfig,
    association_rules,
    funnel,
    mine_patterns,
    paths,
    retention,
    segment_users,
    transitions,
)
from shopseq.artifacts import atomic_write_bytes
from shopseq.prepare.pipeline import PREPARED_TABLE
from shopseq.prepare.profile import profile_store
from shopseq.report import plots
from shopseq.report.artifacts import ArtifactSection, ArtifactTable, find_artifacts
from shopseq.report.markup import Page as _Page
from shopseq.report.markup import cards as _cards
from shopseq.report.markup import dec as _dec
from shopseq.report.markup import fmt as _fmt
from shopseq.report.markup import pct as _pct
from shopseq.report.markup import table as _table
from shopseq.report.states import states_section
from shopseq.schema import ACTION, USER_ID
from shopseq.store import Store

__all__ = ["ReportConfig", "ReportSummary", "build_report", "write_report"]


class ReportConfig(BaseModel):
    """What the report shows and how each analysis is run.

    Attributes:
        title: Page title.
        funnel: Funnel settings (the report adds a per-category and a per-segment view).
        paths: Path settings.
        transitions: Transition settings.
        states: Intent-state (HMM) settings.
        patterns: Sequential-pattern settings.
        rules: Association-rule settings.
        segments: Segment settings.
        retention: Retention settings.
        artifact_dirs: Directories searched for other stages' JSON artifacts (docs/report.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = "shopseq report"
    funnel: FunnelConfig = Field(default_factory=FunnelConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    transitions: TransitionConfig = Field(default_factory=TransitionConfig)
    states: StatesConfig = Field(default_factory=StatesConfig)
    patterns: PatternConfig = Field(default_factory=PatternConfig)
    rules: RuleConfig = Field(default_factory=RuleConfig)
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    artifact_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What was written.

    Attributes:
        path: The HTML file.
        n_figures: Plotly figures in it.
        n_bytes: File size.
        seconds: Wall time per section.
        artifacts: Artifact files rendered.
        warnings: Problems found in artifact files.
    """

    path: Path
    n_figures: int
    n_bytes: int
    seconds: dict[str, float]
    artifacts: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = field(default=())


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
.warn { background:#fef3c7; border:1px solid #f59e0b; border-radius:6px; padding:6px 10px;
        font-size:13px; margin:6px 0; }
.empty { color:var(--muted); font-style:italic; }
pre { background:#f1f5f9; padding:10px; overflow:auto; max-height:360px; font-size:12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:20px; }
"""


def _profile_section(page: _Page, store: Store) -> None:
    p = profile_store(store)
    cards = [
        ("events", _fmt(p.n_events)),
        ("users", _fmt(p.n_users)),
        ("items", _fmt(p.n_items)),
        ("categories", _fmt(p.n_categories)),
        ("sessions", _fmt(p.n_sessions)),
        ("rows quarantined", _fmt(p.rows_quarantined)),
        ("first event", str(p.first_ts)[:16] if p.first_ts else "–"),
        ("last event", str(p.last_ts)[:16] if p.last_ts else "–"),
    ]
    dist: list[list[Any]] = [
        [
            "events per user",
            p.events_per_user.mean,
            p.events_per_user.p50,
            p.events_per_user.p90,
            p.events_per_user.p99,
            p.events_per_user.max,
        ],
    ]
    if p.events_per_session is not None:
        q = p.events_per_session
        dist.append(["events per session", q.mean, q.p50, q.p90, q.p99, q.max])
    body = _cards(cards) + '<div class="grid2"><div>' + page.figure(plots.actions_bar(p))
    body += "</div><div>" + _table(["", "mean", "p50", "p90", "p99", "max"], dist)
    checks: list[list[Any]] = [
        ["rows read", p.rows_read],
        ["exact duplicates among accepted events", p.exact_duplicates],
        ["user-item sparsity", f"{p.sparsity:.5f}"],
    ]
    checks += [[f"quarantined: {k}", v] for k, v in p.quarantine_by_reason.items()]
    body += _table(["check", "value"], checks)
    page.section(
        "profile",
        "Dataset",
        f"Profile of <code>{p.table}</code> (after ingest and prepare).",
        body + "</div></div>",
    )


def _funnel_section(page: _Page, events: ibis.Table, config: ReportConfig, segments: Any) -> None:
    present = {str(a) for a in events.select(ACTION).distinct().to_pyarrow().column(0).to_pylist()}
    steps = tuple(a for a in config.funnel.steps if a.value in present)
    missing = [a.value for a in config.funnel.steps if a.value not in present]
    if len(steps) < 2:
        page.section(
            "funnel",
            "Funnel",
            "",
            f'<p class="empty">A funnel needs at least two of the steps '
            f"{', '.join(a.value for a in config.funnel.steps)}; this data has only "
            f"{', '.join(sorted(present)) or 'no events'}.</p>",
        )
        return
    base = config.funnel.model_copy(update={"steps": steps})
    result = funnel(events, base.model_copy(update={"breakdown": "category"}))
    unit = "sessions" if result.by == "session" else "users"
    rows = [
        [
            s.action,
            s.n,
            _pct(s.rate_from_start),
            _pct(s.rate_from_previous),
            s.dropped,
            _dec(s.median_seconds_from_previous, 0),
        ]
        for s in result.overall.steps
    ]
    body = '<div class="grid2"><div>' + page.figure(plots.funnel_chart(result)) + "</div><div>"
    body += _table(
        ["step", unit, "of step 1", "of previous", "dropped", "median s from previous"], rows
    )
    body += "</div></div>"
    if result.groups:
        title = "Conversion by category of the first step (largest categories)"
        body += page.figure(plots.funnel_groups_chart(result, title))
    if segments is not None and segments.n_users:
        labels = ibis.memtable(
            segments.assignments.select([USER_ID, "segment_name"]).rename_columns(
                [USER_ID, "segment"]
            )
        )
        by_segment = funnel(events, base.model_copy(update={"breakdown": "segment"}), labels)
        body += page.figure(plots.funnel_groups_chart(by_segment, "Conversion by user segment"))
    page.section(
        "funnel",
        "Funnel",
        f"Ordered funnel {' → '.join(s.action for s in result.overall.steps)} per {result.by}: a "
        f"step counts only after the previous one and within {result.window_seconds / 3600:g} h "
        "of the first (docs/analytics.md)."
        + (f" Steps absent from this data, left out: {', '.join(missing)}." if missing else ""),
        body,
    )


def _paths_section(page: _Page, events: ibis.Table, config: ReportConfig) -> None:
    result = paths(events, config.paths)

    def rows(items: Sequence[Any]) -> list[list[Any]]:
        return [[" → ".join(p.path), p.n, _pct(p.share)] for p in items]

    body = page.figure(plots.sankey(result, min_share=0.005)) if result.flows else ""
    body += '<div class="grid2"><div>'
    body += _table(["path to first purchase", "sessions", "share"], rows(result.to_purchase))
    body += "</div><div>"
    body += _table(
        ["last steps before exit (no purchase)", "sessions", "share"], rows(result.to_exit)
    )
    body += "</div></div>"
    page.section(
        "paths",
        "Paths",
        f"{result.n_sessions:,} sessions, {result.n_purchase_sessions:,} with a purchase. Repeated "
        "actions are collapsed (view, view → view); “…” marks a path cut to its last "
        f"{config.paths.max_steps} steps.",
        body,
    )


def _transitions_section(page: _Page, events: ibis.Table, config: ReportConfig) -> None:
    result = transitions(events, config.transitions)
    body = page.figure(plots.heatmap(result.actions, "Next action (row → column)", 440))
    body += page.figure(plots.heatmap(result.categories, "Next category (row → column)", 640))
    page.section(
        "transitions",
        "Transitions",
        f"First-order Markov chains over {result.n_transitions:,} consecutive event pairs per "
        f"{result.by}; each row sums to 100 %. “start” is a session's first event, “exit” its "
        "last.",
        body,
    )


def _retention_section(page: _Page, events: ibis.Table, config: ReportConfig) -> None:
    result = retention(events, config.retention)
    body = page.figure(plots.retention_heatmap(result)) if result.cohorts else ""
    s, r = result.sessions, result.repeat_purchase
    body += _cards(
        [
            ("sessions per user", f"{s.sessions_per_user:.2f}"),
            ("median events / session", _fmt(s.median_events)),
            ("median session length", f"{s.median_duration_seconds / 60:.1f} min"),
            ("bounce rate", _pct(s.bounce_rate)),
            ("sessions with a purchase", _pct(s.purchase_rate)),
            ("buyers", _fmt(r.n_buyers)),
            ("repeat-purchase rate", _pct(r.rate)),
            ("orders per buyer", f"{r.mean_orders_per_buyer:.2f}"),
        ]
    )
    page.section(
        "retention",
        "Retention",
        "Cells after the last day of data are blank (not observed yet), not zero. Repeat "
        "purchase: buyers with two or more orders (sessions with a purchase).",
        body,
    )


def _patterns_section(page: _Page, events: ibis.Table, config: ReportConfig) -> None:
    result = mine_patterns(events, config.patterns)
    c = config.patterns
    rows = [[" → ".join(p.tokens), p.n, _pct(p.support)] for p in result.patterns]
    sample = (
        f" (a seeded sample of {result.n_sequences:,} of {result.n_sequences_total:,})"
        if result.sampled
        else ""
    )
    gap = "any gap" if c.max_gap is None else f"at most {c.max_gap} steps apart"
    page.section(
        "patterns",
        "Sequential patterns",
        f"PrefixSpan over {c.token} sequences of {result.n_sequences:,} sessions{sample}: "
        f"patterns of {c.min_length}–{c.max_length} steps, {gap}, in at least "
        f"{result.min_support_count:,} sessions ({c.min_support:.2%}). "
        f"{result.n_frequent:,} found; the {len(rows)} most frequent:",
        _table([f"pattern ({c.token})", "sessions", "support"], rows),
    )


def _rules_section(page: _Page, events: ibis.Table, config: ReportConfig) -> None:
    result = association_rules(events, config.rules)
    c = config.rules
    rows = [
        [
            ", ".join(r.antecedent),
            ", ".join(r.consequent),
            r.n,
            _pct(r.support),
            _pct(r.confidence),
            _dec(r.lift, 2),
        ]
        for r in result.rules
    ]
    actions = "all actions" if c.actions is None else " or ".join(a.value for a in c.actions)
    page.section(
        "rules",
        "Association rules",
        f"FP-Growth over {result.n_baskets:,} {c.basket} baskets of {c.level}s ({actions}); "
        f"itemsets in at least {result.min_count:,} baskets, confidence ≥ "
        f"{c.min_confidence:.0%}, lift ≥ {c.min_lift:g}. {result.n_rules:,} rules; highest lift "
        "first:",
        _table(
            ["if the basket has", "it also has", "baskets", "support", "confidence", "lift"], rows
        ),
    )


def _segments_section(page: _Page, result: Any) -> None:
    rows = [
        [
            s.segment,
            s.name,
            s.n_users,
            _pct(s.share),
            _pct(s.buyer_share),
            _dec(s.recency_days, 1),
            _dec(s.n_sessions, 1),
            _dec(s.n_events, 1),
            _dec(s.frequency, 2),
            _dec(s.monetary, 2),
            _dec(s.r_score, 1),
            _dec(s.f_score, 1),
            _dec(s.m_score, 1),
        ]
        for s in result.segments
    ]
    body = '<div class="grid2"><div>' + page.figure(plots.segments_chart(result))
    body += "</div><div>" + page.figure(plots.rfm_heatmap(result)) + "</div></div>"
    body += _table(
        [
            "#",
            "segment",
            "users",
            "share",
            "buyers",
            "days since last",
            "sessions",
            "events",
            "purchases",
            "spend",
            "R",
            "F",
            "M",
        ],
        rows,
    )
    page.section(
        "segments",
        "Segments",
        f"k-means (k = {result.k}) on recency, purchases, spend, sessions, events and cart and "
        f"purchase shares, as of {result.as_of}. Means per segment; RFM scores 1–5 (F and M are "
        "0 for users who never bought).",
        body,
    )


def _artifact_table(table: ArtifactTable) -> str:
    return _table(table.columns, [list(r) for r in table.rows], table.title)


def _artifact_sections(page: _Page, sections: list[ArtifactSection]) -> None:
    for i, section in enumerate(sections):
        body = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in section.warnings)
        body += "".join(_artifact_table(t) for t in section.tables)
        body += "".join(page.figure(plots.generic_chart(c)) for c in section.charts)
        if section.raw:
            body += f"<pre>{html.escape(section.raw)}</pre>"
        lead = html.escape(section.description) + (
            f' <span class="empty">({html.escape(str(section.source))})</span>'
        )
        page.section(f"artifact-{i}", html.escape(section.title), lead, body)


def build_report(store: Store, config: ReportConfig) -> tuple[str, ReportSummary]:
    """Run every analysis and render the page.

    Args:
        store: A prepared event store.
        config: Analyses' settings and artifact directories.

    Returns:
        The HTML text and a summary (its ``path`` is empty until written).
    """
    events = store.table(PREPARED_TABLE)
    page = _Page()
    page.timed("profile", lambda: _profile_section(page, store))
    segments: list[Any] = []
    page.timed("segments", lambda: segments.append(segment_users(events, config.segments)))
    page.timed("funnel", lambda: _funnel_section(page, events, config, segments[0]))
    page.timed("paths", lambda: _paths_section(page, events, config))
    page.timed("transitions", lambda: _transitions_section(page, events, config))
    page.timed("states", lambda: states_section(page, events, config.states))
    page.timed("retention", lambda: _retention_section(page, events, config))
    page.timed("patterns", lambda: _patterns_section(page, events, config))
    page.timed("rules", lambda: _rules_section(page, events, config))
    if segments[0].n_users:
        page.timed("segments_render", lambda: _segments_section(page, segments[0]))
    artifacts = find_artifacts(list(config.artifact_dirs))
    _artifact_sections(page, artifacts)
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = html.escape(str(store.path) if store.path else "in-memory store")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t, _ in page.sections)
    body = "".join(f'<section id="{a}"><h2>{t}</h2>{b}</section>' for a, t, b in page.sections)
    text = (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(config.title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head>"
        f'<body data-figures="{page.n_figures}"><header><h1>{html.escape(config.title)}</h1>'
        f"<p>{where} · generated {created}</p><nav>{nav}</nav></header><main>{body}</main>"
        "<footer>Made by shopseq. Definitions: docs/analytics.md; reading this report: "
        "docs/report.md.</footer></body></html>\n"
    )
    warnings = tuple(w for s in artifacts for w in s.warnings)
    summary = ReportSummary(
        path=Path(),
        n_figures=page.n_figures,
        n_bytes=len(text.encode()),
        seconds=page.seconds,
        artifacts=tuple(s.source for s in artifacts),
        warnings=warnings,
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
    )
