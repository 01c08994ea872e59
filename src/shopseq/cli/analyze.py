"""`shopseq analyze ...`: behaviour analyses printed as Rich tables or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape
from rich.table import Table

from shopseq.analyze import (
    FunnelConfig,
    FunnelResult,
    PathsConfig,
    PathsResult,
    PatternConfig,
    PatternsResult,
    RetentionConfig,
    RetentionResult,
    RuleConfig,
    RulesResult,
    SegmentConfig,
    SegmentsResult,
    StatesConfig,
    StatesResult,
    TransitionConfig,
    TransitionsResult,
    association_rules,
    funnel,
    intent_states,
    mine_patterns,
    paths,
    retention,
    segment_users,
    session_state_features,
    transitions,
)
from shopseq.artifacts import json_value
from shopseq.errors import ConfigError, StoreError
from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.engine import EngineConfig, open_engine_store
from shopseq.schema import Action
from shopseq.store import Store

from .cluster import (
    EngineOption,
    SparkAppOption,
    SparkConfOption,
    SparkMasterOption,
    SparkOutputOption,
    engine_config,
)
from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = ["SEGMENTS_TABLE", "STATES_TABLE", "app"]

#: Where `analyze segments --save` writes user segments (read by `funnel --breakdown segment`).
SEGMENTS_TABLE = "user_segments"
#: Where `analyze states --save` writes per-session state features.
STATES_TABLE = "session_states"

app = typer.Typer(
    name="analyze",
    help=(
        "Behaviour analyses: funnels, paths, transitions, intent states, patterns, rules, "
        "segments, retention."
    ),
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def engine_options(
    ctx: typer.Context,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    spark_app_name: SparkAppOption = "shopseq",
    spark_conf: SparkConfOption = None,
    spark_output: SparkOutputOption = None,
) -> None:
    """Behaviour analyses; ``shopseq analyze --engine spark --spark-output DIR <analysis>``."""
    ctx.obj = engine_config(engine, spark_master, spark_app_name, spark_conf, spark_output)


C = TypeVar("C", bound=BaseModel)


def _config(cls: type[C], **values: Any) -> C:
    """Build a config, turning validation errors into one ConfigError naming the options."""
    try:
        return cls(**values)
    except ValidationError as err:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"invalid options for {cls.__name__}: {problems}") from err


def _actions(text: str) -> tuple[Action, ...]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    valid = [a.value for a in Action]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"unknown actions {unknown}; expected some of {valid}")
    return tuple(Action(n) for n in names)


@contextmanager
def _events(
    ctx: typer.Context, store: Any, threads: int | None, write: bool = False
) -> Iterator[tuple[Store, Any]]:
    # The engine comes from the group's options (`engine_options`), kept on the context.
    engine = ctx.find_object(EngineConfig) or EngineConfig()
    with open_engine_store(
        engine, store or default_store_path(), read_only=not write, threads=threads
    ) as opened:
        yield opened, opened.table(PREPARED_TABLE)


def _emit(result: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=json_value))
    else:
        show(result)


def _table(title: str, columns: list[str], rows: list[list[Any]], caption: str = "") -> None:
    table = Table(title=title, caption=caption or None)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))  # data values (categories, items) may look like Rich markup


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _show_funnel(result: FunnelResult) -> None:
    series = [result.overall, *result.groups]
    for s in series:
        _table(
            f"Funnel per {result.by} ({s.group}, window {result.window_seconds / 3600:g} h)",
            ["step", result.by + "s", "of step 1", "of previous", "dropped", "median s"],
            [
                [
                    st.action,
                    st.n,
                    _pct(st.rate_from_start),
                    _pct(st.rate_from_previous),
                    st.dropped,
                    st.median_seconds_from_previous,
                ]
                for st in s.steps
            ],
        )


@app.command("funnel")
def funnel_command(
    ctx: typer.Context,
    steps: Annotated[str, typer.Option(help="Comma-separated actions, in order.")] = (
        "view,cart,purchase"
    ),
    by: Annotated[str, typer.Option(help="session or user.")] = "session",
    window_hours: Annotated[float, typer.Option(help="Conversion window in hours.")] = 24.0,
    breakdown: Annotated[
        str, typer.Option(help="none, category, or segment (after `analyze segments --save`).")
    ] = "none",
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Ordered funnel with drop-off and median time between steps."""
    config = _config(
        FunnelConfig,
        steps=_actions(steps),
        by=by,
        window_seconds=max(1, round(window_hours * 3600)),
        breakdown=breakdown,
    )
    with _events(ctx, store, threads) as (opened, events):
        segments = None
        if config.breakdown == "segment":
            if not opened.has_table(SEGMENTS_TABLE):
                raise StoreError(
                    f"table '{SEGMENTS_TABLE}' not found; run `shopseq analyze segments --save` "
                    "first"
                )
            saved = opened.table(SEGMENTS_TABLE)
            segments = saved.select("user_id", segment=saved.segment_name)
        result = funnel(events, config, segments)
    _emit(result, as_json, _show_funnel)


def _show_paths(result: PathsResult) -> None:
    for title, items in (
        ("Paths to first purchase", result.to_purchase),
        ("Last steps before exit", result.to_exit),
    ):
        _table(
            title,
            ["path", "sessions", "share"],
            [[" > ".join(p.path), p.n, _pct(p.share)] for p in items],
        )
    console.print(f"{result.n_sessions:,} sessions, {result.n_purchase_sessions:,} with a purchase")


@app.command("paths")
def paths_command(
    ctx: typer.Context,
    max_steps: Annotated[int, typer.Option(help="Steps kept before purchase/exit.")] = 5,
    top: Annotated[int, typer.Option(help="Paths shown per end.")] = 10,
    flow_steps: Annotated[int, typer.Option(help="Steps in the flows (JSON only).")] = 4,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Most frequent paths to purchase and to exit (repeats collapsed)."""
    config = _config(PathsConfig, max_steps=max_steps, top_k=top, flow_steps=flow_steps)
    with _events(ctx, store, threads) as (_, events):
        result = paths(events, config)
    _emit(result, as_json, _show_paths)


def _show_transitions(result: TransitionsResult) -> None:
    for title, m in (("Next action", result.actions), ("Next category", result.categories)):
        _table(
            f"{title} (row -> column probability)",
            ["from \\ to", *m.columns],
            [
                [r, *(f"{p:.0%}" if p else "" for p in row)]
                for r, row in zip(m.rows, m.probabilities, strict=True)
            ],
        )


@app.command("transitions")
def transitions_command(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="session or user.")] = "session",
    max_categories: Annotated[int, typer.Option(help="Categories kept as states.")] = 15,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Action -> action and category -> category transition probabilities (Markov)."""
    config = _config(TransitionConfig, by=by, max_categories=max_categories)
    with _events(ctx, store, threads) as (_, events):
        result = transitions(events, config)
    _emit(result, as_json, _show_transitions)


def _show_patterns(result: PatternsResult) -> None:
    caption = (
        f"{result.n_sequences:,} of {result.n_sequences_total:,} sessions mined "
        f"(min {result.min_support_count:,}); {result.n_frequent:,} frequent patterns"
    )
    _table(
        f"Sequential patterns ({result.token})",
        ["pattern", "sessions", "support"],
        [[" > ".join(p.tokens), p.n, _pct(p.support)] for p in result.patterns],
        caption,
    )


@app.command("patterns")
def patterns_command(
    ctx: typer.Context,
    token: Annotated[str, typer.Option(help="item, category, action or action_category.")] = (
        "item"
    ),
    min_support: Annotated[float, typer.Option(help="Minimum share of sessions.")] = 0.001,
    max_gap: Annotated[int, typer.Option(help="Max steps between elements (0: any).")] = 3,
    min_length: Annotated[int, typer.Option(help="Shortest pattern shown.")] = 2,
    max_length: Annotated[int, typer.Option(help="Longest pattern mined.")] = 4,
    top: Annotated[int, typer.Option(help="Patterns shown.")] = 25,
    max_sessions: Annotated[int, typer.Option(help="Sessions mined at most (sample).")] = 200_000,
    seed: Annotated[int, typer.Option(help="Sample seed.")] = 0,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Frequent sequential patterns in sessions (PrefixSpan with a maximum gap)."""
    config = _config(
        PatternConfig,
        token=token,
        min_support=min_support,
        max_gap=max_gap or None,
        min_length=min_length,
        max_length=max_length,
        top_k=top,
        max_sequences=max_sessions,
        seed=seed,
    )
    with _events(ctx, store, threads) as (_, events):
        result = mine_patterns(events, config)
    _emit(result, as_json, _show_patterns)


def _show_rules(result: RulesResult) -> None:
    _table(
        f"Association rules ({result.level}s per {result.basket})",
        ["if", "then", "baskets", "support", "confidence", "lift"],
        [
            [
                ", ".join(r.antecedent),
                ", ".join(r.consequent),
                r.n,
                _pct(r.support),
                _pct(r.confidence),
                round(r.lift, 2),
            ]
            for r in result.rules
        ],
        f"{result.n_baskets:,} of {result.n_baskets_total:,} baskets; {result.n_rules:,} rules",
    )


@app.command("rules")
def rules_command(
    ctx: typer.Context,
    level: Annotated[str, typer.Option(help="item or category.")] = "item",
    basket: Annotated[str, typer.Option(help="session or user.")] = "session",
    actions: Annotated[str, typer.Option(help="Actions that fill baskets, or 'all'.")] = (
        "cart,purchase"
    ),
    min_support: Annotated[float, typer.Option(help="Minimum share of baskets.")] = 0.001,
    min_confidence: Annotated[float, typer.Option(help="Minimum confidence.")] = 0.05,
    min_lift: Annotated[float, typer.Option(help="Minimum lift.")] = 1.0,
    max_len: Annotated[int, typer.Option(help="Largest itemset.")] = 3,
    top: Annotated[int, typer.Option(help="Rules shown.")] = 25,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Association rules (FP-Growth) with support, confidence and lift."""
    config = _config(
        RuleConfig,
        level=level,
        basket=basket,
        actions=None if actions == "all" else _actions(actions),
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        max_len=max_len,
        top_k=top,
    )
    with _events(ctx, store, threads) as (_, events):
        result = association_rules(events, config)
    _emit(result, as_json, _show_rules)


def _show_segments(result: SegmentsResult) -> None:
    _table(
        f"Segments (k-means, as of {result.as_of})",
        [
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
        [
            [
                f"{s.segment}: {s.name}",
                s.n_users,
                _pct(s.share),
                _pct(s.buyer_share),
                _pct(s.return_rate),
                round(s.recency_days, 1),
                round(s.n_sessions, 1),
                round(s.n_events, 1),
                round(s.frequency, 2),
                round(s.monetary, 2),
                round(s.r_score, 1),
                round(s.f_score, 1),
                round(s.m_score, 1),
            ]
            for s in result.segments
        ],
    )
    _table(
        "Users per RFM score (R rows, F columns; F 0 = never bought)",
        ["R \\ F", "0", "1", "2", "3", "4", "5"],
        [[str(r + 1), *row] for r, row in enumerate(result.rfm_grid)][::-1],
    )


@app.command("segments")
def segments_command(
    ctx: typer.Context,
    k: Annotated[int, typer.Option(help="Number of segments.")] = 4,
    seed: Annotated[int, typer.Option(help="k-means seed.")] = 0,
    save: Annotated[
        bool, typer.Option(help=f"Write each user's segment to the store ('{SEGMENTS_TABLE}').")
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """RFM scores and k-means segments with a profile of each."""
    config = _config(SegmentConfig, k=k, seed=seed)
    with _events(ctx, store, threads, write=save) as (opened, events):
        result = segment_users(events, config)
        if save:
            opened.write_arrow(SEGMENTS_TABLE, result.assignments)
    _emit(result, as_json, _show_segments)


def _show_retention(result: RetentionResult) -> None:
    # Show periods up to the last one observed for any cohort (later ones are all blank).
    periods = max((sum(r is not None for r in c.rates) for c in result.cohorts), default=0)
    _table(
        f"{result.period.capitalize()}ly cohorts by {result.cohort_by} "
        f"({result.activity} activity)",
        ["cohort", "users", *(str(k) for k in range(periods))],
        [
            [
                c.start.isoformat(),
                c.size,
                *("" if r is None else _pct(r) for r in c.rates[:periods]),
            ]
            for c in result.cohorts
        ],
    )
    r, s = result.repeat_purchase, result.sessions
    _table(
        "Repeat purchase and sessions",
        ["measure", "value"],
        [
            ["buyers", r.n_buyers],
            ["repeat buyers (2+ orders)", r.n_repeat_buyers],
            ["repeat-purchase rate", _pct(r.rate)],
            ["sessions", s.n_sessions],
            ["sessions per user", s.sessions_per_user],
            ["median events per session", s.median_events],
            ["median session seconds", s.median_duration_seconds],
            ["bounce rate", _pct(s.bounce_rate)],
            ["sessions with a purchase", _pct(s.purchase_rate)],
        ],
    )


@app.command("retention")
def retention_command(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="week or month.")] = "week",
    cohort_by: Annotated[str, typer.Option(help="first_activity or first_purchase.")] = (
        "first_activity"
    ),
    activity: Annotated[str, typer.Option(help="any or purchase.")] = "any",
    periods: Annotated[int, typer.Option(help="Periods after the cohort's own.")] = 12,
    cohorts: Annotated[int, typer.Option(help="Latest cohorts shown.")] = 26,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Cohort retention, repeat-purchase rate and session statistics."""
    config = _config(
        RetentionConfig,
        period=period,
        cohort_by=cohort_by,
        activity=activity,
        max_periods=periods,
        max_cohorts=cohorts,
    )
    with _events(ctx, store, threads) as (_, events):
        result = retention(events, config)
    _emit(result, as_json, _show_retention)


def _show_states(result: StatesResult) -> None:
    _table(
        "Number of states (chosen by " + result.selection + f": {result.model.n_states})",
        ["states", "log-likelihood", "BIC", "held-out LL / event"],
        [
            [
                c.n_states,
                round(c.log_likelihood),
                round(c.bic),
                c.heldout_log_likelihood_per_event,
            ]
            for c in result.candidates
        ],
    )
    _table(
        f"Intent states per {result.by} ({result.n_sessions:,} decoded)",
        ["state", "emits most", "events", "dwell"],
        [
            [
                f"{s.state}: {s.name}",
                ", ".join(f"{sym} {p:.0%}" for sym, p in s.top_symbols if p >= 0.01),
                _pct(s.share_of_events),
                round(s.mean_dwell_events, 1),
            ]
            for s in result.states
        ],
        "dwell = expected consecutive events in the state",
    )
    _table(
        f"Conversion by state ({result.conversion_rate:.1%} of {result.by}s purchase)",
        ["state", result.by + "s", "convert", "occ. conv", "occ. other", "last conv", "last other"],
        [
            [
                f"{s.state}: {s.name}",
                s.n_sessions,
                _pct(s.conversion_rate),
                _pct(s.occupancy_converting),
                _pct(s.occupancy_other),
                _pct(s.last_state_converting),
                _pct(s.last_state_other),
            ]
            for s in result.states
        ],
        f"{result.by}s reaching the state and the share of them that purchase; occ. = mean "
        "share of events in the state; last = share ending there",
    )
    m = result.transitions
    _table(
        "State transitions (row -> column probability)",
        ["from \\ to", "start", *m.columns],
        [
            [r, _pct(start), *(f"{p:.0%}" if p >= 0.005 else "" for p in row)]
            for r, start, row in zip(m.rows, result.start, m.probabilities, strict=True)
        ],
    )
    _table(
        "Most frequent state paths (repeats collapsed)",
        ["path", "sessions", "share", "convert"],
        [[" > ".join(p.path), p.n, _pct(p.share), _pct(p.conversion_rate)] for p in result.paths],
    )


@app.command("states")
def states_command(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="session or user.")] = "session",
    alphabet: Annotated[
        str, typer.Option(help="action, or action_context (views: new / same category / revisit).")
    ] = "action_context",
    min_states: Annotated[int, typer.Option(help="Fewest hidden states tried.")] = 2,
    max_states: Annotated[int, typer.Option(help="Most hidden states tried.")] = 6,
    selection: Annotated[str, typer.Option(help="bic or heldout.")] = "bic",
    n_init: Annotated[int, typer.Option(help="EM restarts per number of states.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the EM starts and samples.")] = 0,
    save: Annotated[
        bool,
        typer.Option(help=f"Write per-session state features to the store ('{STATES_TABLE}')."),
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Hidden intent states (HMM over actions): states, transitions, conversion by state."""
    config = _config(
        StatesConfig,
        by=by,
        alphabet=alphabet,
        min_states=min_states,
        max_states=max_states,
        selection=selection,
        n_init=n_init,
        seed=seed,
    )
    with _events(ctx, store, threads, write=save) as (opened, events):
        with console.status("fitting intent states"):
            result = intent_states(events, config)
        if save:
            opened.write_arrow(
                STATES_TABLE, session_state_features(events, result.model, config.by)
            )
    _emit(result, as_json, _show_states)
