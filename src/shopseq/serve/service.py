"""The live objects of one running service: the models being served, the state, the committer.

:class:`Service` is built in the app's lifespan from a :class:`ServeConfig` and reached by the
routes through ``deps.py``. The served next-item model is one reference (:attr:`Service.model`)
and the per-user prediction runs another (:attr:`Service.predictions`), both replaced whole by
:meth:`Service.reload`: a request takes the reference once, when it starts, so requests in flight
finish on the runs they began with, and a set of runs that fails to load never replaces them.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopseq.artifacts import read_json
from shopseq.errors import ArtifactError, ConfigError
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.runs.nextitem import NextItemRun, UserRecommendations
from shopseq.runs.userscores import ScoredUsers, load_scored_runs
from shopseq.runtime import TorchRuntime
from shopseq.serve.committer import GroupCommitter
from shopseq.serve.config import ServeConfig
from shopseq.serve.heap import release_heap, settle_heap
from shopseq.serve.keys import KeyStore
from shopseq.serve.metrics import ServiceMetrics
from shopseq.serve.state import UserState, open_state

if TYPE_CHECKING:
    from shopseq.nextitem.gru4rec import GRU4Rec, GRUState

__all__ = ["HiddenStateCache", "LoadedRun", "Service"]

_log = logging.getLogger("shopseq.serve")


#: Users whose GRU hidden state a loaded run keeps (least recently asked dropped first). A state
#: costs ~2 kB (its window of at most ``max_len`` item indices and one vector per layer), so the
#: default bound is ~100 MB at most; a user dropped from it is answered by the full recompute.
HIDDEN_STATE_USERS = 50_000


class HiddenStateCache:
    """Each recent user's GRU hidden state, so a new event costs one cell step, not a whole run.

    Keyed by user; an entry holds the window of item indices it summarises (the history cut as
    the model reads it) and the state after it. A request whose window starts with the cached
    window (the same events, then the new ones) advances the state by the new events only;
    anything else (an unknown user, a window that slid past ``max_len`` or past the state's
    ``max_recent``, a history that changed) runs the GRU over the whole window again. So every
    answer is the full recompute's, bit for bit; the check compares the window's item indices
    (<= ``max_len`` integers), not a version counter that could miss a slid window. A cache
    belongs to one loaded run: a reload builds a new run with an empty cache.

    Args:
        model: The fitted GRU4Rec being served.
        max_users: Users kept.
    """

    def __init__(self, model: GRU4Rec, max_users: int = HIDDEN_STATE_USERS) -> None:
        self.model = model
        self.max_users = max_users
        self.window_len = model.config.max_len
        self._users: OrderedDict[str, tuple[np.ndarray, GRUState]] = OrderedDict()
        self._lock = threading.Lock()
        #: Answers that advanced a cached state / that ran over the whole window.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._users)

    def scores(self, user: str, history: np.ndarray) -> np.ndarray:
        """The model's scores after ``history`` (as ``model.score`` gives them), kept for next time.

        Args:
            user: The user's id (the key).
            history: The history answered from (item indices, -1 unknown), oldest first.

        Returns:
            (1, n_items) float32 scores; column 0 is -inf.
        """
        window = np.ascontiguousarray(history[-self.window_len :], dtype=np.int32)
        with self._lock:
            entry = self._users.get(user)
            if entry is not None:
                self._users.move_to_end(user)
        seen = 0 if entry is None else len(entry[0])
        if entry is not None and seen <= len(window) and np.array_equal(window[:seen], entry[0]):
            state = self.model.advance(entry[1], window[seen:])
            self.hits += 1
        else:
            state = self.model.advance(self.model.initial_state(), window)
            self.misses += 1
        with self._lock:
            self._users[user] = (window, state)
            self._users.move_to_end(user)
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)
        return self.model.score_state(state)


@dataclass(frozen=True, slots=True)
class LoadedRun:
    """A run loaded for serving.

    Attributes:
        run: The loaded next-item run.
        path: Its directory.
        version: ``<directory name>@<created_at>#<manifest digest>``: changes with every training.
        model: The catalogue name of its model.
    """

    run: NextItemRun
    path: Path
    version: str
    model: str
    states: HiddenStateCache | None = None

    def recommend(
        self, user: str, k: int, *, exclude_seen: bool = True, recent: Sequence[str] = ()
    ) -> UserRecommendations:
        """``run.recommend``, scored through :attr:`states` when the run keeps them.

        The run builds the history (its history of ``user`` plus ``recent``, cut to its
        ``history_len``) and ranks it with the same top-k either way, so the answer is the same;
        only the GRU's run over the history is incremental.
        """
        if self.states is None:
            return self.run.recommend(user, k, exclude_seen=exclude_seen, recent=recent)
        return self.run.recommend(
            user, k, exclude_seen=exclude_seen, recent=recent, scorer=self.states.scores
        )


def load_run(path: Path, threads: int) -> LoadedRun:
    """Load a run directory for serving (slow: call it off the event loop).

    Args:
        path: The run directory.
        threads: Torch threads.

    Returns:
        The loaded run.

    Raises:
        ArtifactError: If the directory is not a complete next-item run.
    """
    run = NextItemRun.load(Path(path), TorchRuntime(threads=threads))
    # A GRU4Rec run has imported its module; looking it up there keeps torch out of other runs.
    gru4rec = sys.modules.get("shopseq.nextitem.gru4rec")
    model = run.model
    states = (
        HiddenStateCache(model)
        if gru4rec is not None and isinstance(model, gru4rec.GRU4Rec)
        else None
    )
    return LoadedRun(run, Path(path), run.run.version(), run.config["model"], states)


def _load_forecasts(path: Path | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    try:
        records = read_json(path)
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path}: cannot read forecasts: {err}") from err
    if not isinstance(records, list):
        raise ArtifactError(f"{path}: not a forecasts.json written by shopseq forecast --out")
    return records


def _warn_if_pseudonyms(loaded: LoadedRun, have_key: bool) -> None:
    """Say so when a run's user ids look like ingest's pseudonyms but the service has no key."""
    sample = loaded.run.owners.ids.slice(0, 200).to_pylist()
    looks_hashed = bool(sample) and all(re.fullmatch(r"[0-9a-f]{32}", u) for u in sample)
    if looks_hashed and not have_key:
        _log.warning(
            "the user ids of %s look pseudonymised (32 hex characters) but the service has no "
            "pseudonymisation key: raw ids will not find their history; start it with "
            "--pseudonymize and the key ingest used",
            loaded.version,
        )


class Service:
    """Everything the routes use.

    Args:
        config: The service's config.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = ServiceMetrics()
        self.keys = KeyStore(config.keys)
        self.pseudonymizer = (
            Pseudonymizer(config.pseudonymize_key.get_secret_value())
            if config.pseudonymize_key is not None
            else None
        )
        self._reload_lock = threading.Lock()
        self.model: LoadedRun = load_run(config.run, config.threads)
        self.metrics.set_model(self.model.version, self.model.model)
        _warn_if_pseudonyms(self.model, self.pseudonymizer is not None)
        self.forecasts = _load_forecasts(config.forecasts)
        #: Per-user prediction runs (``shopseq predict``), one per task.
        self.predictions: tuple[ScoredUsers, ...] = load_scored_runs(config.predictions)
        self.metrics.set_predictions({p.task.name: p.version for p in self.predictions})
        self.state: UserState = open_state(
            config.state, config.state_prefix, config.max_recent, config.max_users
        )
        self.committer = GroupCommitter(
            config.log,
            self.state,
            self.pseudonymizer,
            max_group_events=config.max_group_events,
            max_future=timedelta(seconds=config.max_future_seconds),
            on_commit=self.metrics.committed,
        )
        if self.committer.log.pseudonymized != (self.pseudonymizer is not None):
            self.committer.log.close()
            said = "pseudonymised" if self.committer.log.pseudonymized else "raw"
            raise ConfigError(
                f"{config.log} holds {said} user ids but the service was started "
                f"{'with' if self.pseudonymizer else 'without'} a pseudonymisation key; "
                "use the same setting as the log (or a new --log)"
            )
        started = time.perf_counter()
        applied = self.committer.rebuild_state()
        _log.info(
            "state (%s) rebuilt from %s: %d events applied in %.2fs, %d users",
            self.state.kind,
            config.log.name,
            applied,
            time.perf_counter() - started,
            self.state.n_users(),
        )
        _log.info("heap settled in %.2fs (gc.freeze)", settle_heap(reloaded=False))
        self.committer.start()

    def user_key(self, user_id: str) -> str:
        """The id a user is known by in the run and the log (the pseudonym when configured).

        Args:
            user_id: The id the client sent.

        Returns:
            The id to look up.
        """
        return self.pseudonymizer.pseudonym(user_id) if self.pseudonymizer else user_id

    def reload(
        self, path: Path | None, predictions: Sequence[Path] | None = None
    ) -> tuple[LoadedRun, LoadedRun]:
        """Load runs and swap them in; the old ones keep serving if any fails to load.

        Args:
            path: Next-item run directory (``None``: the one being served, re-read).
            predictions: Predict run directories, one per task (``None``: the ones being served,
                re-read; empty: serve none).

        Returns:
            ``(new, previous)`` next-item runs.

        Raises:
            ArtifactError: If a run cannot be loaded (nothing is swapped).
        """
        with self._reload_lock:
            previous = self.model
            target = Path(path) if path is not None else previous.path
            scored = [p.run.path for p in self.predictions] if predictions is None else predictions
            try:
                loaded = load_run(target, self.config.threads)
                forecasts = _load_forecasts(self.config.forecasts)
                users = load_scored_runs(scored)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            _warn_if_pseudonyms(loaded, self.pseudonymizer is not None)
            self.model = loaded  # one reference assignment: atomic for every reader
            self.predictions = users
            self.forecasts = forecasts
            self.metrics.set_model(loaded.version, loaded.model)
            self.metrics.set_predictions({p.task.name: p.version for p in users})
            self.metrics.reloads.labels("ok").inc()
            # Requests in flight may still hold the old run: what they free later goes by
            # refcount, and a cycle left in it is collected at the next reload's unfreeze.
            settle_heap(reloaded=True)
            _log.info("reloaded: %s -> %s", previous.version, loaded.version)
            return loaded, previous

    def close(self) -> None:
        """Commit what is queued, stop the committer, close the state, unfreeze the heap."""
        self.committer.stop()
        self.state.close()
        release_heap()
