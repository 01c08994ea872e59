"""Next-item jobs: train one model into a run directory, evaluate a line-up, answer from a run.

Each job takes one typed config and returns a result; the CLI, the benchmarks and the service call
these and only render what comes back. Fitting and ranking beside the baselines happen in one
place (:func:`fit_model`, :func:`rank_beside_baselines`), whichever job asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shopseq.artifacts import atomic_write_json
from shopseq.errors import ConfigError, InputError
from shopseq.metrics.ranking import top_k
from shopseq.nextitem.base import NextItemModel
from shopseq.nextitem.evaluation import RankingConfig, history_length, sample_cases
from shopseq.nextitem.leaderboard import (
    Leaderboard,
    LeaderboardEntry,
    build_leaderboard,
    write_leaderboard_csv,
    write_leaderboard_json,
)
from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.catalogue import NEXT_ITEM_MODELS, next_item_spec
from shopseq.runs.rundir import RunDir
from shopseq.runtime import TorchRuntime
from shopseq.sequences import EvalCases, Sequences, Split, Vocabulary
from shopseq.sequences.protocols import SplitConfig, split_events
from shopseq.store import open_store

__all__ = [
    "EvaluateConfig",
    "FittedModel",
    "NextItemRun",
    "TrainConfig",
    "TrainResult",
    "UserRecommendations",
    "evaluate_next_item",
    "fit_model",
    "load_split",
    "model_config",
    "rank_beside_baselines",
    "train_next_item",
]

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default log: say nothing."""


def _known_model(name: str) -> str:
    next_item_spec(name)  # raises ConfigError (a ValueError) naming the choices
    return name


#: A next-item model name, checked against the catalogue.
ModelName = Annotated[str, AfterValidator(_known_model)]


class TrainConfig(BaseModel):
    """``train_next_item``: fit one model, rank it beside popularity, save a run directory.

    Attributes:
        model: Catalogue name (``runs.catalogue.NEXT_ITEM_MODELS``).
        params: Fields of the model's config (validated when the model is built).
        n_epochs: Maximum epochs of a neural model (``None``: its default).
        seed: Seed of the model (where it has one).
        split: Which events and how they are split.
        ranking: How the test cases are ranked (seen-item exclusion, history cap, bootstrap).
        runtime: Threads, device and progress of the torch models, and this process's place
            in a data-parallel fit (``torchrun``; torch models only): every process fits on its
            shard, rank 0 alone ranks the test cases and writes the run directory.
        out: The run directory to write (replaced as a whole).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    params: dict[str, Any] = Field(default_factory=dict)
    n_epochs: int | None = Field(default=None, ge=1)
    seed: int = 0
    split: SplitConfig = SplitConfig()
    ranking: RankingConfig = RankingConfig()
    runtime: TorchRuntime = TorchRuntime()
    out: Path

    @model_validator(mode="after")
    def _valid_params(self) -> TrainConfig:
        # Fail on a misspelled or invalid parameter now, not after the split is built.
        model_config(self.model, self.params, n_epochs=self.n_epochs, seed=self.seed)
        if self.runtime.world_size > 1 and not next_item_spec(self.model).neural:
            raise ConfigError(
                f"{self.model} does not train with torch; run it in one process (without torchrun)"
            )
        return self


class EvaluateConfig(BaseModel):
    """``evaluate_next_item``: fit a line-up (baselines always added) and rank it on one split.

    Attributes:
        models: Catalogue names (the baselines are added when absent).
        params: Config fields per model name.
        n_epochs: Maximum epochs of the neural models (``None``: their defaults).
        seed: Seed of the models and of the case sample.
        split: Which events and how they are split.
        ranking: How the test cases are ranked.
        runtime: Threads, device and progress of the torch models.
        max_cases: Rank a seeded random sample of this many test cases (``None``: all).
        dataset: Name recorded with the leaderboard.
        out: Directory for ``leaderboard.json`` / ``leaderboard.csv`` (``None``: not written).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[ModelName, ...] = tuple(NEXT_ITEM_MODELS)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    n_epochs: int | None = Field(default=None, ge=1)
    seed: int = 0
    split: SplitConfig = SplitConfig()
    ranking: RankingConfig = RankingConfig()
    runtime: TorchRuntime = TorchRuntime()
    max_cases: int | None = Field(default=None, ge=1)
    dataset: str = "store"
    out: Path | None = None

    @model_validator(mode="after")
    def _valid_params(self) -> EvaluateConfig:
        for name, params in self.params.items():
            model_config(name, params, n_epochs=self.n_epochs, seed=self.seed)
        if self.runtime.world_size > 1:
            raise ConfigError("evaluate runs in one process; train one model with torchrun")
        return self


def model_config(
    name: str,
    params: dict[str, Any],
    *,
    n_epochs: int | None,
    seed: int,
    threads: int | None = None,
) -> BaseModel:
    """Build a model's config from its parameters and the shared options.

    Args:
        name: Catalogue name.
        params: Config fields to set.
        n_epochs: Maximum epochs (set where the config has ``n_epochs`` and ``params`` does not).
        seed: Seed (set where the config has ``seed`` and ``params`` does not).
        threads: Native threads of a model that is not trained with torch (``implicit``'s ALS
            and BPR: set where the config has ``threads`` and ``params`` does not; torch models
            take theirs from the runtime).

    Returns:
        The validated config.

    Raises:
        ConfigError: For an unknown model, key or invalid value.
    """
    config_class = next_item_spec(name).classes()[1]
    fields = dict(params)
    for key, value in {"n_epochs": n_epochs, "seed": seed, "threads": threads}.items():
        if key in config_class.model_fields and value is not None:
            fields.setdefault(key, value)
    try:
        return config_class(**fields)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"parameters of {name}: {problems}") from err


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A model fitted on a split, with what its fit cost.

    Attributes:
        name: Catalogue name.
        config: Its config.
        model: The fitted model.
        seconds: Wall time of ``fit``.
        info: Facts about training (epochs, best epoch, seconds per epoch, speed, threads).
    """

    name: str
    config: BaseModel
    model: NextItemModel
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def fit_model(
    name: str,
    config: BaseModel,
    runtime: TorchRuntime,
    train: Sequences,
    n_items: int,
    valid: EvalCases | None,
) -> FittedModel:
    """Fit a catalogue model on training sequences and time it.

    With ``runtime.distributed`` (one process of ``torchrun``), this process joins the group,
    fits its replica on its shard of ``train`` (``TorchRuntime.shard``) and leaves the group;
    every process ends with the same weights.

    Args:
        name: Catalogue name.
        config: Its config.
        runtime: Threads, device, progress and processes of the torch models.
        train: Training sequences (all of them, on every process).
        n_items: Vocabulary size including padding.
        valid: Validation cases (early stopping of the neural models; ``None``: none).

    Returns:
        The fitted model.

    Raises:
        ConfigError: If a model that does not train with torch is asked to fit in several
            processes.
    """
    spec = next_item_spec(name)
    model = spec.build(config, runtime)
    valid = valid if valid is not None and len(valid) else None
    started = time.perf_counter()
    if runtime.world_size > 1:
        if not spec.neural:
            raise ConfigError(f"{name} does not train with torch; fit it in one process")
        from shopseq.distributed import process_group  # imports torch

        with process_group(runtime):
            model.fit(train.subset(runtime.shard(len(train))), n_items, valid)
    else:
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
            "processes": epochs[0].processes,
        }
    elif isinstance(native := getattr(config, "threads", None), int):
        info = {"threads": native}  # ALS / BPR: implicit's own threads
    # Settings a model chose on validation while fitting (the fusion's weight), for the row.
    info.update(getattr(model, "choices_", None) or {})
    return FittedModel(name, config, model, seconds, info)


def load_split(store_path: Path, config: SplitConfig, threads: int | None) -> Split:
    """Read the prepared events of a store and split them.

    Args:
        store_path: The DuckDB file.
        config: The split.
        threads: DuckDB threads.

    Returns:
        The split.
    """
    with open_store(store_path, read_only=True, threads=threads) as store:
        return split_events(store.table(PREPARED_TABLE), config)


def item_counts(split: Split) -> np.ndarray:
    """Training events per item (popularity; average-popularity of a leaderboard).

    Args:
        split: The split.

    Returns:
        ``(n_items,)`` int64 counts.
    """
    items = split.train.items
    return np.bincount(items[items > 0], minlength=split.item_vocab.size)


def rank_beside_baselines(
    fitted: Sequence[FittedModel],
    split: Split,
    ranking: RankingConfig,
    *,
    dataset: str,
    max_cases: int | None = None,
    seed: int = 0,
    log: Log = _quiet,
) -> Leaderboard:
    """Rank fitted models on the split's test cases: the leaderboard with intervals and tests.

    Args:
        fitted: Fitted models (at least one catalogue baseline).
        split: The split they were fitted on.
        ranking: The ranking protocol.
        dataset: Name recorded with the leaderboard.
        max_cases: Rank a seeded random sample of this many test cases (``None``: all).
        seed: Seed of that sample.
        log: Where progress lines go.

    Returns:
        The leaderboard.
    """
    entries = [
        LeaderboardEntry(f.name, f.model, NEXT_ITEM_MODELS[f.name].baseline, f.seconds, f.info)
        for f in fitted
    ]
    cases = sample_cases(split.test, max_cases, seed)
    if len(cases) < len(split.test):
        log(f"ranking a random sample of {max_cases:,} of {len(split.test):,} test cases")
    return build_leaderboard(
        entries,
        cases,
        split.item_vocab.size,
        ranking,
        dataset=dataset,
        split=split.report.protocol,
        item_counts=item_counts(split),
    )


def evaluate_next_item(config: EvaluateConfig, split: Split, log: Log = _quiet) -> Leaderboard:
    """Fit the line-up (baselines always included) on the split and rank the test cases.

    Args:
        config: The job.
        split: The split.
        log: Where progress lines go.

    Returns:
        The leaderboard (also written to ``config.out`` when set).
    """
    baselines = sorted(n for n, spec in NEXT_ITEM_MODELS.items() if spec.baseline)
    fitted = []
    for name in dict.fromkeys([*config.models, *baselines]):
        model_cfg = model_config(
            name,
            config.params.get(name, {}),
            n_epochs=config.n_epochs,
            seed=config.seed,
            threads=config.runtime.threads,
        )
        log(f"fitting {name}")
        fitted.append(
            fit_model(
                name, model_cfg, config.runtime, split.train, split.item_vocab.size, split.valid
            )
        )
        log(f"fitted {name} in {fitted[-1].seconds:.1f}s")
    board = rank_beside_baselines(
        fitted,
        split,
        config.ranking,
        dataset=config.dataset,
        max_cases=config.max_cases,
        seed=config.seed,
        log=log,
    )
    if config.out is not None:
        write_leaderboard_json(board, config.out / "leaderboard.json")
        write_leaderboard_csv(board, config.out / "leaderboard.csv")
    return board


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``train_next_item`` produced.

    Attributes:
        leaderboard: The model beside popularity on the test cases.
        run: The run directory written.
        fitted: The fitted model.
    """

    leaderboard: Leaderboard
    run: RunDir
    fitted: FittedModel


def train_next_item(config: TrainConfig, split: Split, log: Log = _quiet) -> TrainResult | None:
    """Fit one model, rank it beside popularity, and write a complete run directory.

    In a data-parallel fit every process calls this with the same split; each trains on its
    shard, and rank 0 alone ranks the test cases and writes the run directory.

    Args:
        config: The job.
        split: The split (from :func:`load_split` with ``config.split``).
        log: Where progress lines go.

    Returns:
        The leaderboard and the run directory (``None`` on the other ranks of a data-parallel
        fit, which write nothing).
    """
    model_cfg = model_config(
        config.model,
        config.params,
        n_epochs=config.n_epochs,
        seed=config.seed,
        threads=config.runtime.threads,
    )
    n_items = split.item_vocab.size
    log(f"fitting {config.model}")
    fitted = [fit_model(config.model, model_cfg, config.runtime, split.train, n_items, split.valid)]
    log(f"fitted {config.model} in {fitted[0].seconds:.1f}s")
    if not config.runtime.is_main:
        return None
    if config.model != "popularity":
        reference = model_config("popularity", {}, n_epochs=None, seed=config.seed)
        one_process = config.runtime.model_copy(update={"distributed": None})
        fitted.append(fit_model("popularity", reference, one_process, split.train, n_items, None))
    board = rank_beside_baselines(fitted, split, config.ranking, dataset="store")
    history_len = history_length(fitted[0].model, config.ranking.max_history)
    with RunDir.create(config.out, "next_item") as run:
        fitted[0].model.save(run.model)
        split.item_vocab.save(run.items)
        split.owner_vocab.save(run.owners)
        # Plain writes: the whole directory is temporary until RunDir.create moves it in place.
        np.savez(run.histories, allow_pickle=False, **_recent_histories(split, history_len))
        np.save(run.popularity, item_counts(split), allow_pickle=False)
        atomic_write_json(
            run.config,
            {
                "model": config.model,
                "model_class": type(fitted[0].model).__name__,
                "params": model_cfg.model_dump(mode="json"),
                "split": config.split.model_dump(mode="json"),
                "split_report": asdict(split.report),
                "ranking": config.ranking.model_dump(mode="json"),
                "history_len": history_len,
                "n_items": n_items,
            },
        )
        atomic_write_json(run.metrics, {**board.to_dict(), "training": fitted[0].info})
    return TrainResult(board, RunDir(config.out), fitted[0])


def _recent_histories(split: Split, history_len: int | None) -> dict[str, np.ndarray]:
    """Each owner's most recent events over the whole log, cut as evaluation cuts them.

    Unknown items stay in as -1 (the models read them as no signal), exactly as the evaluation
    histories hold them, so a served history is the one a test case of that owner would get.
    Rows are sorted by owner index for lookup by binary search.
    """
    full = split.test.sequences if len(split.test) else split.train_full
    recent = full.prefixes(np.arange(len(full)), full.lengths, history_len)
    order = np.argsort(recent.owner, kind="stable")
    recent = recent.subset(order)
    return {
        "owner": recent.owner.astype(np.int64),
        "offsets": recent.offsets.astype(np.int64),
        "items": recent.items.astype(np.int32),
    }


@dataclass(frozen=True, slots=True)
class UserRecommendations:
    """Top-k items for one owner from a run directory.

    Attributes:
        user: The owner id asked for.
        items: Recommended external item ids, best first.
        scores: Their scores.
        history: External ids of the history answered from (most recent last; unknown items
            are ``None``).
        source: ``history`` (the owner's history in the run, plus any recent items given),
            ``session`` (an owner the run has not seen: the recent items given), or ``popularity``
            (nothing known: the run's most popular training items).
        note: A sentence saying what was answered from, for people.
    """

    user: str
    items: list[str]
    scores: list[float]
    history: list[str | None]
    source: Literal["history", "session", "popularity"]
    note: str


class NextItemRun:
    """A next-item run directory loaded for answering (the CLI's ``recommend``, the service).

    Args:
        run: The opened run directory.
        runtime: Where a torch model scores.
    """

    def __init__(self, run: RunDir, runtime: TorchRuntime) -> None:
        self.run = run
        self.config = run.read_config()
        self.model = next_item_spec(self.config["model"]).load(run.model, runtime)
        self.items = Vocabulary.load("item", run.items)
        self.owners = Vocabulary.load("user", run.owners)
        self.history_len: int | None = self.config["history_len"]
        with np.load(run.histories, allow_pickle=False) as data:
            self._owner = data["owner"]
            self._offsets = data["offsets"]
            self._items = data["items"]
        self.popularity = np.load(run.popularity, allow_pickle=False)
        # Hash lookups built once: Arrow's index_in hashes the whole vocabulary on every call
        # (milliseconds per request over 100 k items, more over a million owners).
        self._item_ids: list[str] = self.items.ids.to_pylist()
        self._item_index = {v: n + 1 for n, v in enumerate(self._item_ids)}
        self._owner_index = {v: n + 1 for n, v in enumerate(self.owners.ids.to_pylist())}
        self._by_popularity = np.argsort(-self.popularity[1:], kind="stable") + 1

    @classmethod
    def load(cls, path: Path, runtime: TorchRuntime | None = None) -> NextItemRun:
        """Open and load a next-item run directory.

        Args:
            path: The run directory.
            runtime: Where a torch model scores (default: 1 CPU thread).

        Returns:
            The loaded run.

        Raises:
            ArtifactError: If the directory is not a complete run of this layout version.
        """
        return cls(RunDir.open(path, "next_item"), runtime or TorchRuntime())

    def history_of(self, user: str) -> np.ndarray | None:
        """The stored history (item indices, -1 unknown) of an owner, or ``None`` if unseen.

        Args:
            user: External owner id.

        Returns:
            The history, or ``None`` for an owner the run does not know.
        """
        index = self._owner_index.get(user, -1)
        if index <= 0:
            return None
        row = int(np.searchsorted(self._owner, index))
        if row >= len(self._owner) or self._owner[row] != index:
            return np.zeros(0, np.int32)
        history: np.ndarray = self._items[self._offsets[row] : self._offsets[row + 1]]
        return history

    def encode_items(self, items: Sequence[str]) -> np.ndarray:
        """Item indices of external ids (-1 for an item the run does not know).

        Args:
            items: External item ids.

        Returns:
            int32 indices.
        """
        return np.array([self._item_index.get(i, -1) for i in items], dtype=np.int32)

    def decode_items(self, indices: np.ndarray) -> list[str]:
        """External ids of item indices (all of them known items).

        Args:
            indices: Item indices in 1..n_items-1.

        Returns:
            The ids.
        """
        ids = self._item_ids
        return [ids[i - 1] for i in indices.tolist()]

    def _decode_history(self, history: np.ndarray) -> list[str | None]:
        ids, n = self._item_ids, len(self._item_ids)
        return [ids[i - 1] if 0 < i <= n else None for i in history.tolist()]

    def recommend(
        self,
        user: str,
        k: int,
        *,
        exclude_seen: bool = True,
        recent: Sequence[str] = (),
        scorer: Callable[[str, np.ndarray], np.ndarray] | None = None,
    ) -> UserRecommendations:
        """Top ``k`` items for ``user``, falling back to the session so far or popularity.

        Args:
            user: External owner id (one the run has never seen is answered, not refused).
            k: Number of items.
            exclude_seen: Never recommend an item of the history answered from.
            recent: External ids of items the owner just interacted with (most recent last),
                appended to the stored history (a new visitor's session so far).
            scorer: ``(user, history) -> (1, n_items)`` scores to rank instead of the model's
                ``recommend`` (the service's incremental GRU4Rec states, which give the model's
                scores); the same top-k ranks them.

        Returns:
            The recommendations and what they were answered from.

        Raises:
            InputError: If ``k`` < 1.
        """
        if k < 1:
            raise InputError(f"The 'k' parameter of recommend must be an int >= 1. Got {k}.")
        stored = self.history_of(user)
        extra = self.encode_items(recent)
        if stored is None and len(extra) == 0:
            top = self._by_popularity[:k]
            return UserRecommendations(
                user,
                self.decode_items(top),
                [float(s) for s in self.popularity[top]],
                [],
                "popularity",
                f"{user!r} is not in this run and no recent items were given: "
                "the most popular training items",
            )
        history = np.concatenate([stored if stored is not None else np.zeros(0, np.int32), extra])
        if self.history_len is not None:
            history = history[-self.history_len :]
        one = Sequences.from_lists([history])
        recs = (
            self.model.recommend(one, k, exclude_seen=exclude_seen)
            if scorer is None
            else top_k(scorer(user, history), k, seen=one if exclude_seen else None)
        )
        keep = recs.items[0] > 0
        source: Literal["history", "session"] = "history" if stored is not None else "session"
        note = (
            f"from {len(history)} recent events of {user!r}"
            if stored is not None
            else f"{user!r} is not in this run: from the {len(extra)} recent items given"
        )
        return UserRecommendations(
            user,
            self.decode_items(recs.items[0][keep]),
            [float(s) for s in recs.scores[0][keep]],
            self._decode_history(history),
            source,
            note,
        )
