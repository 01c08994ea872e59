"""`shopseq evaluate`: fit several models on one split and print / write their leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from shopseq.errors import ConfigError
from shopseq.runs.catalogue import NEXT_ITEM_MODELS

from .flags import flag_errors
from .options import StoreOption, ThreadsOption, console, default_store_path
from .train import split_config

__all__ = ["evaluate"]


def evaluate(
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help=f"Model to evaluate (repeatable; default all of {sorted(NEXT_ITEM_MODELS)}). "
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
    device: Annotated[str, typer.Option(help="Torch device of neural models.")] = "cpu",
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Evaluate models on one split (full ranking, 95 % intervals, paired test vs baseline)."""
    from shopseq.nextitem.evaluation import RankingConfig
    from shopseq.runs.nextitem import EvaluateConfig, evaluate_next_item, load_split
    from shopseq.runtime import TorchRuntime

    from .render import show_leaderboard

    store_path = store or default_store_path()
    try:
        config = EvaluateConfig(
            models=tuple(models or NEXT_ITEM_MODELS),
            n_epochs=epochs,
            seed=seed,
            split=split_config(protocol, by, test_fraction, valid_fraction),
            ranking=RankingConfig(exclude_seen=exclude_seen, seed=seed),
            runtime=TorchRuntime(threads=threads or 1, device=device, progress=True),
            dataset=str(store_path),
            out=out,
        )
    except ValidationError as err:
        raise ConfigError(flag_errors(err, {"models": "--model"})) from err
    with console.status("building sequences and split"):
        split = load_split(store_path, config.split, threads)
    with console.status("fitting and ranking"):
        board = evaluate_next_item(config, split, log=console.print)
    show_leaderboard(console, board)
    console.print(
        f"wrote {escape(str(out / 'leaderboard.json'))} and {escape(str(out / 'leaderboard.csv'))}"
    )
