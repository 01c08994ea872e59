"""`shopseq evaluate`: fit several models on one split and print / write their leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from shopseq.errors import ConfigError
from shopseq.evaluate import (
    Leaderboard,
    LeaderboardEntry,
    RankingConfig,
    build_leaderboard,
    write_leaderboard_csv,
    write_leaderboard_json,
)
from shopseq.sequences import Split

from .options import StoreOption, ThreadsOption, console, default_store_path
from .render import show_leaderboard
from .train import BASELINES, MODELS, _split_config, fit_model, load_split, model_config

__all__ = ["evaluate", "run_evaluate"]


def run_evaluate(
    names: list[str],
    split: Split,
    *,
    dataset: str,
    exclude_seen: bool,
    epochs: int | None,
    threads: int | None,
    seed: int,
    out: Path | None,
    params: dict[str, dict[str, Any]] | None = None,
    max_cases: int | None = None,
) -> Leaderboard:
    """Fit the models (baselines always included), rank the test cases, print and write.

    Args:
        names: Models to evaluate (baselines are added when absent).
        split: The split.
        dataset: Name for the records.
        exclude_seen: Seen-item exclusion of the ranking.
        epochs: Maximum epochs of neural models.
        threads: Torch threads of neural models.
        seed: Seed.
        out: Directory for ``leaderboard.json`` / ``leaderboard.csv`` (``None``: do not write).
        params: Config fields per model name.
        max_cases: Rank a seeded random sample of this many test cases (``None``: all).

    Returns:
        The leaderboard.
    """
    chosen = list(dict.fromkeys([*names, *sorted(BASELINES)]))
    entries = []
    for name in chosen:
        config = model_config(
            name, (params or {}).get(name, {}), epochs=epochs, threads=threads, seed=seed
        )
        with console.status(f"fitting {name}"):
            model, seconds, info = fit_model(name, config, split)
        console.print(f"fitted {name} in {seconds:.1f}s")
        entries.append(LeaderboardEntry(name, model, name in BASELINES, seconds, info))
    counts = np.bincount(split.train.items[split.train.items > 0], minlength=split.item_vocab.size)
    cases = split.test
    if max_cases is not None and len(cases) > max_cases:
        chosen_cases = np.random.default_rng(seed).choice(len(cases), max_cases, replace=False)
        cases = cases.subset(np.sort(chosen_cases))
        console.print(f"ranking a random sample of {max_cases:,} of {len(split.test):,} test cases")
    with console.status(f"ranking {len(cases):,} test cases"):
        board = build_leaderboard(
            entries,
            cases,
            split.item_vocab.size,
            RankingConfig(exclude_seen=exclude_seen, seed=seed),
            dataset=dataset,
            split=split.report.protocol,
            item_counts=counts,
        )
    show_leaderboard(console, board)
    if out is not None:
        write_leaderboard_json(board, out / "leaderboard.json")
        write_leaderboard_csv(board, out / "leaderboard.csv")
        console.print(f"wrote {out / 'leaderboard.json'} and {out / 'leaderboard.csv'}")
    return board


def evaluate(
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help=f"Model to evaluate (repeatable; default all of {sorted(MODELS)}). "
            "Baselines are always included.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for leaderboard.json / .csv.")] = Path(
        "leaderboard"
    ),
    protocol: Annotated[str, typer.Option(help="time_cut or leave_last_out.")] = "time_cut",
    by: Annotated[str, typer.Option(help="Sequences per 'user' or per 'session'.")] = "user",
    test_fraction: Annotated[float, typer.Option(help="Time cut: latest share of events.")] = 0.1,
    valid_fraction: Annotated[float, typer.Option(help="Time cut: share before the test.")] = 0.1,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (neural models).")] = None,
    exclude_seen: Annotated[
        bool, typer.Option(help="Rank targets with the history's items removed.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Evaluate models on one split (full ranking, 95 % intervals, paired test vs baseline)."""
    names = models or list(MODELS)
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    split = load_split(
        store or default_store_path(),
        _split_config(protocol, by, test_fraction, valid_fraction),
        threads,
    )
    run_evaluate(
        names,
        split,
        dataset=str(store or default_store_path()),
        exclude_seen=exclude_seen,
        epochs=epochs,
        threads=threads,
        seed=seed,
        out=out,
    )
