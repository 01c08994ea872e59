"""`shopseq train`: fit one next-item model on the store's prepared events; write a run directory.

The run directory (layout in ``runs/rundir.py``) holds everything ``shopseq recommend`` and the
service need, without the store. Under ``torchrun --nproc-per-node N shopseq train ...`` a torch
model trains data-parallel: each process fits on its shard and rank 0 alone prints and writes.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from shopseq.errors import ConfigError
from shopseq.runs.catalogue import NEXT_ITEM_MODELS

from .cluster import torchrun_distributed
from .flags import flag_errors
from .options import StoreOption, ThreadsOption, console, default_store_path

if TYPE_CHECKING:
    from shopseq.sequences.protocols import SplitConfig

__all__ = ["parse_params", "split_config", "train"]


def _silent(*_: object) -> None:
    """Print nothing (the other ranks of a data-parallel fit)."""


def parse_params(text: str) -> dict[str, Any]:
    """Parse ``--params`` (a JSON object).

    Args:
        text: JSON text.

    Returns:
        The object.

    Raises:
        ConfigError: If it is not a JSON object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--params must be a JSON object; {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"--params must be a JSON object; got {text!r}")
    return value


def split_config(protocol: str, by: str, test_fraction: float, valid: float) -> SplitConfig:
    """The split named by the shared split flags.

    Args:
        protocol: ``--protocol``.
        by: ``--by``.
        test_fraction: ``--test-fraction``.
        valid: ``--valid-fraction``.

    Returns:
        The split config.

    Raises:
        ConfigError: Naming the flag of an invalid value.
    """
    from shopseq.sequences.protocols import SplitConfig

    try:
        return SplitConfig(
            protocol=protocol,  # validated by pydantic
            by=by,
            test_fraction=test_fraction,
            valid_fraction=valid,
        )
    except ValidationError as err:
        raise ConfigError(flag_errors(err)) from err


def train(
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"One of {sorted(NEXT_ITEM_MODELS)}.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Run directory to write (default: runs/<model>).")
    ] = None,
    protocol: Annotated[str, typer.Option(help="time_cut or leave_last_out.")] = "time_cut",
    by: Annotated[str, typer.Option(help="Sequences per 'user' or per 'session'.")] = "user",
    test_fraction: Annotated[float, typer.Option(help="Time cut: latest share of events.")] = 0.1,
    valid_fraction: Annotated[float, typer.Option(help="Time cut: share before the test.")] = 0.1,
    params: Annotated[str, typer.Option(help="Model config as JSON, e.g. '{\"k\": 50}'.")] = "{}",
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (neural models).")] = None,
    exclude_seen: Annotated[
        bool, typer.Option(help="Rank test targets with the history's items removed.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="Torch device of neural models.")] = "cpu",
    dist_backend: Annotated[
        str,
        typer.Option(
            help="Under torchrun: gloo (CPU), nccl (CUDA) or auto (nccl on a CUDA device)."
        ),
    ] = "auto",
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Fit a next-item model, rank the test cases beside popularity, write a run directory.

    Run it under ``torchrun --nproc-per-node N`` to train a torch model in N processes.
    """
    from shopseq.nextitem.evaluation import RankingConfig
    from shopseq.runs.nextitem import TrainConfig, load_split, train_next_item
    from shopseq.runtime import TorchRuntime

    from .render import show_leaderboard

    distributed = torchrun_distributed(os.environ, dist_backend)
    main = distributed is None or distributed.is_main
    if distributed is not None and device == "cuda":
        device = f"cuda:{distributed.local_rank}"  # one GPU per process on this machine
    try:
        config = TrainConfig(
            model=model,
            params=parse_params(params),
            n_epochs=epochs,
            seed=seed,
            split=split_config(protocol, by, test_fraction, valid_fraction),
            ranking=RankingConfig(exclude_seen=exclude_seen, seed=seed),
            runtime=TorchRuntime(
                threads=threads or 1, device=device, progress=main, distributed=distributed
            ),
            out=out or Path("runs") / model,
        )
    except ValidationError as err:
        raise ConfigError(flag_errors(err)) from err
    say = console.print if main else _silent
    with console.status("building sequences and split") if main else nullcontext():
        split = load_split(store or default_store_path(), config.split, threads)
    say(
        f"{split.report.protocol}: {split.report.n_train_events:,} training events, "
        f"{len(split.valid):,} validation and {len(split.test):,} test cases, "
        f"{split.item_vocab.size - 1:,} items"
        + (f"; {config.runtime.world_size} processes" if distributed is not None else "")
    )
    with console.status(f"fitting {model} and ranking the test cases") if main else nullcontext():
        result = train_next_item(config, split, log=say)
    if result is None:  # another rank of a data-parallel fit: rank 0 reports and writes
        return
    show_leaderboard(console, result.leaderboard)
    console.print(
        f"run directory: {escape(str(result.run.path))}   "
        f"(try: shopseq recommend --run {escape(str(result.run.path))} --user <id>)"
    )
