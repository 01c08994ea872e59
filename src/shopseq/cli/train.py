"""`shopseq train`: fit one next-item model on the store's prepared events; write a run directory.

A run directory holds everything ``shopseq recommend`` (and later the service) needs, without the
store: ``config.json`` (model, its parameters, the split), ``model/`` (weights, no pickle),
``items.parquet`` / ``owners.parquet`` (vocabularies), ``histories.npz`` (each owner's recent
items), ``metrics.json`` (test metrics beside the popularity baseline) and ``manifest.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic import BaseModel, ValidationError

import shopseq
from shopseq.artifacts import atomic_dir, atomic_write_json
from shopseq.errors import ConfigError
from shopseq.evaluate import (
    Leaderboard,
    LeaderboardEntry,
    RankingConfig,
    build_leaderboard,
)
from shopseq.models.base import NextItemModel
from shopseq.models.baselines import (
    ItemKNN,
    ItemKNNConfig,
    MarkovChain,
    MarkovChainConfig,
    Popularity,
    PopularityConfig,
    SessionKNN,
    SessionKNNConfig,
)
from shopseq.models.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.models.mf import ALS, BPR, ALSConfig, BPRConfig
from shopseq.models.sasrec import SASRec, SASRecConfig
from shopseq.prepare import PREPARED_TABLE
from shopseq.sequences import EvalCases, Sequences, Split
from shopseq.sequences.protocols import SplitConfig, split_events
from shopseq.store import open_store

from .options import StoreOption, ThreadsOption, console, default_store_path
from .render import show_leaderboard

__all__ = ["BASELINES", "MODELS", "fit_model", "fit_sequences", "load_split", "train"]

#: Model name -> (class, config class): the one table of models, at the edge (no registry).
MODELS: dict[str, tuple[Any, type[BaseModel]]] = {
    "popularity": (Popularity, PopularityConfig),
    "markov": (MarkovChain, MarkovChainConfig),
    "itemknn": (ItemKNN, ItemKNNConfig),
    "sknn": (SessionKNN, SessionKNNConfig),
    "als": (ALS, ALSConfig),
    "bpr": (BPR, BPRConfig),
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "sasrec": (SASRec, SASRecConfig),
}
#: Models that count as baselines on a leaderboard.
BASELINES = frozenset({"popularity", "markov", "itemknn", "sknn"})


def model_config(
    name: str, params: dict[str, Any], *, epochs: int | None, threads: int | None, seed: int
) -> BaseModel:
    """Build a model's config from ``--params`` and the shared flags.

    Args:
        name: Model name (key of :data:`MODELS`).
        params: Config fields to set.
        epochs: Maximum epochs of neural models.
        threads: Torch threads of neural models.
        seed: Seed of neural models.

    Returns:
        The validated config.

    Raises:
        ConfigError: For an unknown model, key or invalid value.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    config_class = MODELS[name][1]
    fields = dict(params)
    shared = {"n_epochs": epochs, "threads": threads, "seed": seed}
    for key, value in shared.items():
        if key in config_class.model_fields and value is not None:
            fields.setdefault(key, value)
    try:
        return config_class(**fields)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"--params for {name}: {problems}") from err


def fit_model(
    name: str, config: BaseModel, split: Split
) -> tuple[NextItemModel, float, dict[str, Any]]:
    """Fit a model on the split's training sequences (validation cases for early stopping).

    Args:
        name: Model name.
        config: Its config.
        split: The split (``train``, ``valid``, ``item_vocab``).

    Returns:
        The fitted model, fit seconds and facts about training (epochs, speed, threads).
    """
    valid = split.valid if len(split.valid) else None
    return fit_sequences(name, config, split.train, split.item_vocab.size, valid)


def fit_sequences(
    name: str, config: BaseModel, train: Sequences, n_items: int, valid: EvalCases | None
) -> tuple[NextItemModel, float, dict[str, Any]]:
    """Fit a model on sequences and time it.

    Args:
        name: Model name.
        config: Its config.
        train: Training sequences.
        n_items: Vocabulary size including padding.
        valid: Validation cases (early stopping of neural models).

    Returns:
        The fitted model, fit seconds and facts about training (epochs, speed, threads).
    """
    model: NextItemModel = MODELS[name][0](config)
    started = time.perf_counter()
    model.fit(train, n_items, valid)
    seconds = time.perf_counter() - started
    info: dict[str, Any] = {}
    report = getattr(model, "report_", None)
    if report is not None and report.epochs:
        epochs = report.epochs
        info = {
            "epochs": len(epochs),
            "best_epoch": report.best_epoch,
            "seconds_per_epoch": float(np.mean([e.seconds for e in epochs])),
            "sequences_per_s": float(np.mean([e.sequences_per_s for e in epochs])),
            "threads": epochs[0].threads,
        }
    return model, seconds, info


def load_split(store_path: Path, config: SplitConfig, threads: int | None) -> Split:
    """Read the prepared events of a store and split them.

    Args:
        store_path: The DuckDB file.
        config: The split.
        threads: DuckDB threads.

    Returns:
        The split.
    """
    with (
        open_store(store_path, read_only=True, threads=threads) as store,
        console.status("building sequences and split"),
    ):
        return split_events(store.table(PREPARED_TABLE), config)


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


def _histories(split: Split, max_len: int = 50) -> dict[str, np.ndarray]:
    """Each owner's most recent known items (all events up to the end of the data)."""
    full = split.test.sequences if len(split.test) else split.train_full
    recent = full.prefixes(np.arange(len(full)), full.lengths, None)
    known = recent.items > 0
    seq = np.repeat(np.arange(len(recent)), recent.lengths)[known]
    items = recent.items[known]
    counts = np.bincount(seq, minlength=len(recent))
    from_end = np.repeat(np.cumsum(counts), counts) - np.arange(len(items)) - 1
    keep = from_end < max_len
    kept = np.bincount(seq[keep], minlength=len(recent))
    return {
        "owner": recent.owner.astype(np.int64),
        "offsets": np.concatenate([[0], np.cumsum(kept)]).astype(np.int64),
        "items": items[keep].astype(np.int32),
    }


def save_run(
    directory: Path,
    *,
    name: str,
    config: BaseModel,
    split_config: SplitConfig,
    split: Split,
    model: NextItemModel,
    board: Leaderboard,
    info: dict[str, Any],
) -> None:
    """Write a complete run directory atomically.

    Args:
        directory: Destination (replaced as a whole).
        name: Model name.
        config: Model config.
        split_config: Split config.
        split: The split (vocabularies and histories).
        model: The fitted model.
        board: Test leaderboard (the model beside popularity).
        info: Training facts.
    """
    with atomic_dir(directory) as tmp:
        model.save(tmp / "model")
        split.item_vocab.save(tmp / "items.parquet")
        split.owner_vocab.save(tmp / "owners.parquet")
        with (tmp / "histories.npz").open("wb") as handle:
            np.savez(handle, allow_pickle=False, **_histories(split))
        atomic_write_json(
            tmp / "config.json",
            {
                "model": name,
                "model_class": type(model).__name__,
                "params": config.model_dump(mode="json"),
                "split": split_config.model_dump(mode="json"),
                "split_report": split.report,
                "n_items": split.item_vocab.size,
                "shopseq_version": shopseq.__version__,
            },
        )
        atomic_write_json(tmp / "metrics.json", {**board.to_dict(), "training": info})
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        atomic_write_json(
            tmp / "manifest.json",
            {
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "shopseq_version": shopseq.__version__,
                "files": {str(p.relative_to(tmp)): p.stat().st_size for p in files},
            },
        )


def train(
    model: Annotated[str, typer.Option("--model", "-m", help=f"One of {sorted(MODELS)}.")],
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
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Fit a next-item model, rank the test cases beside popularity, write a run directory."""
    split_config = _split_config(protocol, by, test_fraction, valid_fraction)
    config = model_config(model, parse_params(params), epochs=epochs, threads=threads, seed=seed)
    split = load_split(store or default_store_path(), split_config, threads)
    run_train(model, config, split_config, split, out or Path("runs") / model, exclude_seen, seed)


def _split_config(protocol: str, by: str, test_fraction: float, valid: float) -> SplitConfig:
    try:
        return SplitConfig(
            protocol=protocol,  # validated by pydantic
            by=by,
            test_fraction=test_fraction,
            valid_fraction=valid,
        )
    except ValidationError as err:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(problems.replace("_", "-")) from err


def run_train(
    name: str,
    config: BaseModel,
    split_config: SplitConfig,
    split: Split,
    out: Path,
    exclude_seen: bool,
    seed: int,
) -> Leaderboard:
    """Fit, evaluate beside popularity, save the run and print a summary.

    Args:
        name: Model name.
        config: Model config.
        split_config: Split config.
        split: The split.
        out: Run directory.
        exclude_seen: Seen-item exclusion of the test ranking.
        seed: Seed of the bootstrap.

    Returns:
        The test leaderboard.
    """
    console.print(
        f"{split.report.protocol}: {split.report.n_train_events:,} training events, "
        f"{len(split.valid):,} validation and {len(split.test):,} test cases, "
        f"{split.item_vocab.size - 1:,} items"
    )
    with console.status(f"fitting {name}"):
        model, seconds, info = fit_model(name, config, split)
    console.print(f"fitted {name} in {seconds:.1f}s")
    entries = [LeaderboardEntry(name, model, name in BASELINES, seconds, info)]
    if name != "popularity":
        reference, ref_seconds, _ = fit_model("popularity", PopularityConfig(), split)
        entries.append(LeaderboardEntry("popularity", reference, True, ref_seconds))
    counts = np.bincount(split.train.items[split.train.items > 0], minlength=split.item_vocab.size)
    board = build_leaderboard(
        entries,
        split.test,
        split.item_vocab.size,
        RankingConfig(exclude_seen=exclude_seen, seed=seed),
        dataset="store",
        split=split.report.protocol,
        item_counts=counts,
    )
    save_run(
        out,
        name=name,
        config=config,
        split_config=split_config,
        split=split,
        model=model,
        board=board,
        info=info,
    )
    show_leaderboard(console, board)
    console.print(f"run directory: {out}   (try: shopseq recommend --run {out} --user <id>)")
    return board
