"""`shopseq predict <task>`: train, evaluate and score one per-user prediction from the store.

Tasks: next-action, next-time, purchase, session-intent, churn, clv. Writes a run directory with
the scored table (``scored.parquet`` / ``scored.csv``: owner, score, interval where there is one,
top reasons) and ``leaderboard.json`` (what the report reads).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from shopseq.errors import ConfigError

from .flags import flag_errors
from .options import StoreOption, ThreadsOption, console, default_store_path

if TYPE_CHECKING:
    from shopseq.runs.predict import PredictResult

__all__ = ["parse_duration", "predict", "show_prediction"]

_TASKS = ("next-action", "next-time", "purchase", "session-intent", "churn", "clv")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str, flag: str) -> timedelta:
    """Parse ``7d``, ``12h``, ``30m``, ``90s``, ``2w`` (a bare number is days).

    Args:
        text: The flag's value.
        flag: The flag's name (for the message).

    Returns:
        The duration.

    Raises:
        ConfigError: If it is not a positive duration.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{flag}: {text!r} is not a duration; expected e.g. 7d, 12h, 30m, 90s")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "d"])


#: Metrics printed per kind of task (all of them are in leaderboard.json), with short headers.
_SHOWN = {
    "binary": {"roc_auc": "AUC", "pr_auc": "PR-AUC", "log_loss": "logloss", "brier": "Brier",
               "ece": "ECE", "f1": "F1", "lift": "lift@10%"},
    "multiclass": {"macro_f1": "macro-F1", "accuracy": "accuracy", "log_loss": "logloss"},
    "next-time": {"mae": "MAE s", "median_ae": "MedAE s", "mae_observed": "MAE obs s"},
    "clv": {"spearman": "Spearman", "mae": "MAE", "predicted_over_actual": "pred/actual"},
}  # fmt: skip


def show_prediction(result: PredictResult, top: int) -> None:
    """Print the leaderboard and the highest scores with their reasons.

    Args:
        result: What the predict job returned.
        top: Rows of the scored table to print.
    """
    board = result.leaderboard
    task = result.task
    shown = _SHOWN.get(task.kind if task.kind != "regression" else task.name, {})
    table = Table(title=f"{task.name}: {task.question} ({board.n_test:,} test examples)")
    table.add_column("model")
    for header in shown.values():
        table.add_column(header, justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("vs best baseline", justify="right")
    for row in board.rows:
        versus = row.get("vs_best_baseline")
        name = row["model"] + ("*" if row["baseline"] else "")
        table.add_row(
            name + (" <" if row["model"] == board.chosen else ""),
            *(_cell(row["test"][m]) for m in shown),
            f"{_cell(row['ci'][0])}-{_cell(row['ci'][1])}",
            "-" if versus is None else f"{versus['diff']:+.3g} p={versus['p_value']:.2g}",
        )
    console.print(table)
    console.print(
        f"* baseline; < chosen on validation by {board.primary} (best baseline "
        f"{board.best_baseline}); test cut-off {result.plan.test}"
    )
    for name, why in board.skipped_baselines.items():
        console.print(f"baseline {name} left out: {escape(why)}")
    scored = result.scored.slice(0, top).to_pylist()
    if not scored:
        return
    listing = Table(title=f"top {len(scored)} by score")
    keys = [k for k in ("user_id", "session_id", "k") if k in scored[0]]
    extra = [k for k in ("prediction", "clv", "clv_low", "clv_high", "p_alive") if k in scored[0]]
    for name in [*keys, "score", *extra, "reasons"]:
        listing.add_column(name, overflow="fold")
    for row in scored:
        listing.add_row(
            *(escape(str(row[k])) for k in keys),
            _cell(row["score"]),
            *(_cell(row[k]) for k in extra),
            escape(row["reasons"] or ""),
        )
    console.print(listing)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    return "-" if value is None else str(value)


def predict(
    task: Annotated[str, typer.Argument(help=f"One of {', '.join(_TASKS)}.", show_default=False)],
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/predict-<task>).")
    ] = None,
    horizon: Annotated[
        str, typer.Option(help="Next event and purchase horizon, e.g. 7d, 12h.")
    ] = "7d",
    churn_horizon: Annotated[str, typer.Option(help="No activity for this long = churn.")] = "14d",
    spend_horizon: Annotated[str, typer.Option(help="Spend (clv) horizon.")] = "14d",
    active_within: Annotated[
        str | None, typer.Option(help="Only owners active this long before a cut-off.")
    ] = None,
    train_snapshots: Annotated[int, typer.Option(min=1, help="Training cut-offs.")] = 3,
    step: Annotated[
        str | None, typer.Option(help="Between training cut-offs (default: the label span).")
    ] = None,
    test_cutoff: Annotated[
        datetime | None, typer.Option(help="Test cut-off, naive UTC (default: span before end).")
    ] = None,
    positions: Annotated[
        str, typer.Option(help="Session intent: prefix lengths, e.g. 1,2,3,5,10.")
    ] = "1,2,3,5,10",
    estimators: Annotated[int, typer.Option(min=1, help="LightGBM rounds.")] = 300,
    calibration: Annotated[str, typer.Option(help="isotonic, platt or none.")] = "isotonic",
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Models beside the baselines, comma-separated: lightgbm (always) plus the "
            "sequence models gru (GRU4Rec's encoder) and sasrec (SASRec's Transformer).",
        ),
    ] = "lightgbm",
    sequence_epochs: Annotated[
        int, typer.Option(min=1, help="Training epochs of the sequence models.")
    ] = 4,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 200,
    top: Annotated[int, typer.Option(min=0, help="Rows of the scored table to print.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Train and evaluate one per-user prediction beside its baselines, then score every owner."""
    from shopseq.runs.predict import PredictConfig, predict_users
    from shopseq.sequences import LabelConfig, SessionIntentConfig, SnapshotConfig
    from shopseq.users.evaluation import EvaluationConfig
    from shopseq.users.sequence import SequenceConfig

    if task not in _TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(_TASKS)}")
    try:
        spans = {
            "next_event_horizon": parse_duration(horizon, "--horizon"),
            "purchase_horizon": parse_duration(horizon, "--horizon"),
            "churn_horizon": parse_duration(churn_horizon, "--churn-horizon"),
            "spend_horizon": parse_duration(spend_horizon, "--spend-horizon"),
        }
        active = parse_duration(active_within, "--active-within") if active_within else None
        steps = parse_duration(step, "--step") if step else None
    except ValueError as err:  # a parsed value the config refuses (e.g. under one second)
        raise ConfigError(str(err)) from err
    try:
        prefixes = tuple(int(p) for p in positions.split(",") if p.strip())
    except ValueError as err:
        raise ConfigError(f"--positions: {positions!r} is not a list of integers") from err
    try:
        config = PredictConfig(
            task=task,
            labels=LabelConfig(**spans, active_within=active),
            snapshots=SnapshotConfig(n_train=train_snapshots, step=steps, test_cutoff=test_cutoff),
            sessions=SessionIntentConfig(positions=prefixes),
            evaluation=EvaluationConfig(n_resamples=resamples, seed=seed),
            n_estimators=estimators,
            calibration=calibration,
            models=tuple(m.strip() for m in model.split(",") if m.strip()),
            sequence=SequenceConfig(n_epochs=sequence_epochs),
            threads=threads or 1,
            seed=seed,
            out=out or Path("runs") / f"predict-{task}",
        )
    except ValidationError as err:
        raise ConfigError(
            flag_errors(err, {"test_cutoff": "--test-cutoff", "models": "--model"})
        ) from err
    with console.status(f"predict {task}: building examples, training, evaluating, scoring"):
        result = predict_users(config, store or default_store_path(), log=console.print)
    counts = result.counts
    console.print(
        f"examples: {counts['train']:,} train, {counts['valid']:,} valid, {counts['test']:,} "
        f"test; scored {counts['scored']:,}"
    )
    show_prediction(result, top)
    console.print(
        f"run directory: {escape(str(result.run.path))} "
        "(scored.parquet, scored.csv, leaderboard.json)"
    )
