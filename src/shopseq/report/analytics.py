"""The analytics sections of the report, each a ``(page, ctx)`` builder.

Dataset, funnel, paths, transitions, retention, sequential patterns, association rules and
segments (docs/analytics.md defines each; docs/report.md says how to read them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shopseq.analyze import (
    association_rules,
    funnel_breakdowns,
    mine_patterns,
    paths,
    retention,
    transitions,
)
from shopseq.prepare.profile import profile_store
from shopseq.report import plots
from shopseq.report.context import ReportContext
from shopseq.report.elements import Page, cards, dec, fmt, pct, table

__all__ = [
    "funnel_section",
    "paths_section",
    "patterns_section",
    "profile_section",
    "retention_section",
    "rules_section",
    "segments_section",
    "transitions_section",
]


def profile_section(page: Page, ctx: ReportContext) -> None:
    """Dataset: counts, events per action, distributions and what ingest quarantined.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    p = profile_store(ctx.store)
    items = [
        ("events", fmt(p.n_events)),
        ("users", fmt(p.n_users)),
        ("items", fmt(p.n_items)),
        ("categories", fmt(p.n_categories)),
        ("sessions", fmt(p.n_sessions)),
        ("rows quarantined", fmt(p.rows_quarantined)),
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
    checks: list[list[Any]] = [
        ["rows read", p.rows_read],
        ["exact duplicates among accepted events", p.exact_duplicates],
        ["user-item sparsity", f"{p.sparsity:.5f}"],
    ]
    checks += [[f"quarantined: {k}", v] for k, v in p.quarantine_by_reason.items()]
    # The chart gets a row of its own: beside the tables, Plotly drew it wider than its column
    # and its axis ran under the quarantine table.
    body = cards(items) + page.figure(plots.actions_bar(p))
    body += '<div class="grid2"><div>' + table(["", "mean", "p50", "p90", "p99", "max"], dist)
    body += "</div><div>" + table(["check", "value"], checks) + "</div></div>"
    page.section(
        "profile",
        "Dataset",
        f"Profile of <code>{p.table}</code> (after ingest and prepare).",
        body,
    )


def funnel_section(page: Page, ctx: ReportContext) -> None:
    """Funnel: overall, by category of the first step, by user segment.

    Args:
        page: The page.
        ctx: The report's shared state (its segments are reused, not recomputed).
    """
    events, config, present = ctx.events, ctx.config, ctx.actions_present
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
    # Both views from one pass: the steps each owner reached are found once.
    segmented = bool(ctx.segments.n_users)
    views = funnel_breakdowns(
        ctx.ordered if base.by == "session" else events,
        base,
        ("category", "segment") if segmented else ("category",),
        ctx.segment_labels if segmented else None,
    )
    result = views["category"]
    unit = "sessions" if result.by == "session" else "users"
    rows = [
        [
            s.action,
            s.n,
            pct(s.rate_from_start),
            pct(s.rate_from_previous),
            s.dropped,
            dec(s.median_seconds_from_previous, 0),
        ]
        for s in result.overall.steps
    ]
    body = '<div class="grid2"><div>' + page.figure(plots.funnel_chart(result)) + "</div><div>"
    body += table(
        ["step", unit, "of step 1", "of previous", "dropped", "median s from previous"], rows
    )
    body += "</div></div>"
    if result.groups:
        title = "Conversion by category of the first step (largest categories)"
        body += page.figure(plots.funnel_groups_chart(result, title))
    if segmented:
        body += page.figure(
            plots.funnel_groups_chart(views["segment"], "Conversion by user segment")
        )
    page.section(
        "funnel",
        "Funnel",
        f"Ordered funnel {' → '.join(s.action for s in result.overall.steps)} per {result.by}: a "
        f"step counts only after the previous one and within {result.window_seconds / 3600:g} h "
        "of the first (docs/analytics.md)."
        + (f" Steps absent from this data, left out: {', '.join(missing)}." if missing else ""),
        body,
    )


def paths_section(page: Page, ctx: ReportContext) -> None:
    """The paths section (docs/report.md says how to read it).

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    config = ctx.config
    result = paths(ctx.ordered, config.paths)

    def rows(items: Sequence[Any]) -> list[list[Any]]:
        return [[" → ".join(p.path), p.n, pct(p.share)] for p in items]

    body = page.figure(plots.sankey(result, min_share=0.005)) if result.flows else ""
    body += '<div class="grid2"><div>'
    body += table(["path to first purchase", "sessions", "share"], rows(result.to_purchase))
    body += "</div><div>"
    body += table(
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


def transitions_section(page: Page, ctx: ReportContext) -> None:
    """The transitions section (docs/report.md says how to read it).

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    config = ctx.config
    events = ctx.ordered if config.transitions.by == "session" else ctx.events
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


def retention_section(page: Page, ctx: ReportContext) -> None:
    """The retention section (docs/report.md says how to read it).

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    events, config = ctx.events, ctx.config
    result = retention(events, config.retention)
    body = page.figure(plots.retention_heatmap(result)) if result.cohorts else ""
    s, r = result.sessions, result.repeat_purchase
    body += cards(
        [
            ("sessions per user", f"{s.sessions_per_user:.2f}"),
            ("median events / session", fmt(s.median_events)),
            ("median session length", f"{s.median_duration_seconds / 60:.1f} min"),
            ("bounce rate", pct(s.bounce_rate)),
            ("sessions with a purchase", pct(s.purchase_rate)),
            ("buyers", fmt(r.n_buyers)),
            ("repeat-purchase rate", pct(r.rate)),
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


def patterns_section(page: Page, ctx: ReportContext) -> None:
    """The patterns section (docs/report.md says how to read it).

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    config = ctx.config
    result = mine_patterns(ctx.ordered, config.patterns)
    c = config.patterns
    rows = [[" → ".join(p.tokens), p.n, pct(p.support)] for p in result.patterns]
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
        table([f"pattern ({c.token})", "sessions", "support"], rows),
    )


def rules_section(page: Page, ctx: ReportContext) -> None:
    """The rules section (docs/report.md says how to read it).

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    events, config = ctx.events, ctx.config
    result = association_rules(events, config.rules)
    c = config.rules
    rows = [
        [
            ", ".join(r.antecedent),
            ", ".join(r.consequent),
            r.n,
            pct(r.support),
            pct(r.confidence),
            dec(r.lift, 2),
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
        table(
            ["if the basket has", "it also has", "baskets", "support", "confidence", "lift"], rows
        ),
    )


def segments_section(page: Page, ctx: ReportContext) -> None:
    """Segments: sizes, the RFM grid and a profile per segment.

    Args:
        page: The page.
        ctx: The report's shared state.
    """
    result = ctx.segments
    if not result.n_users:
        return
    rows = [
        [
            s.segment,
            s.name,
            s.n_users,
            pct(s.share),
            pct(s.buyer_share),
            pct(s.return_rate),
            dec(s.recency_days, 1),
            dec(s.n_sessions, 1),
            dec(s.n_events, 1),
            dec(s.frequency, 2),
            dec(s.monetary, 2),
            dec(s.r_score, 1),
            dec(s.f_score, 1),
            dec(s.m_score, 1),
        ]
        for s in result.segments
    ]
    body = '<div class="grid2"><div>' + page.figure(plots.segments_chart(result))
    body += "</div><div>" + page.figure(plots.rfm_heatmap(result)) + "</div></div>"
    body += table(
        [
            "#",
            "segment",
            "users",
            "share",
            "buyers",
            "returns / purchase",
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
