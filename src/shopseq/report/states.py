"""The report's intent-state section: HMM transitions and emissions, conversion by state."""

from __future__ import annotations

import html

from shopseq.analyze import intent_states
from shopseq.errors import InputError
from shopseq.report import plots
from shopseq.report.context import ReportContext
from shopseq.report.elements import Page, cards, dec, fmt, pct, table

__all__ = ["states_section"]


def states_section(page: Page, ctx: ReportContext) -> None:
    """Fit and decode the intent states and add their section to the page.

    Args:
        page: The page being built.
        ctx: The report's shared context (prepared events, ``config.states``).
    """
    try:
        config = ctx.config.states
        result = intent_states(ctx.ordered if config.by == "session" else ctx.events, config)
    except InputError as err:  # e.g. a log with one kind of event: no behaviour to model
        page.section("states", "Intent states", "", f'<p class="empty">{html.escape(str(err))}</p>')
        return
    chosen = result.model.n_states
    headline = [
        (f"{result.by}s", fmt(result.n_sessions)),
        ("states (" + result.selection + ")", str(chosen)),
        ("convert", pct(result.conversion_rate)),
    ]
    body = cards(headline) + page.figure(plots.state_transitions_heatmap(result))
    body += page.figure(plots.state_emissions_heatmap(result))
    body += table(
        [
            "#",
            "state",
            "emits most",
            "events",
            "dwell (events)",
            result.by + "s reaching it",
            "of them convert",
            "occupancy: converting",
            "occupancy: other",
            "last state: converting",
            "last state: other",
        ],
        [
            [
                s.state,
                s.name,
                ", ".join(f"{sym} {p:.0%}" for sym, p in s.top_symbols if p >= 0.01),
                pct(s.share_of_events),
                dec(s.mean_dwell_events, 1),
                s.n_sessions,
                pct(s.conversion_rate),
                pct(s.occupancy_converting),
                pct(s.occupancy_other),
                pct(s.last_state_converting),
                pct(s.last_state_other),
            ]
            for s in result.states
        ],
        "State by conversion",
    )
    body += table(
        ["path (repeats collapsed)", result.by + "s", "share", "convert"],
        [[" → ".join(p.path), p.n, pct(p.share), pct(p.conversion_rate)] for p in result.paths],
        "Most frequent decoded state paths",
    )
    body += table(
        ["states", "log-likelihood", "BIC", "held-out log-likelihood per event"],
        [
            [
                c.n_states,
                dec(c.log_likelihood, 0),
                dec(c.bic, 0),
                dec(c.heldout_log_likelihood_per_event, 4),
            ]
            for c in result.candidates
        ],
        f"Number of states tried ({result.selection} chose {chosen})",
    )
    page.section(
        "states",
        "Intent states",
        f"A hidden Markov model over each {result.by}'s events (views split into new item, same "
        "category as the previous event, and revisit); states named from what they emit, "
        f"decoded with Viterbi. Fitted on {result.n_fit_sessions:,} {result.by}s.",
        body,
    )
