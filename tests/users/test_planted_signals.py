"""Each per-user model recovers a signal the generator planted and its baseline cannot see."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.metrics.classification import mean_absolute_error, roc_auc
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.runs.predict import PredictConfig, build_task_examples
from shopseq.sequences import SnapshotConfig, event_time_range, plan_snapshots
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events_with_truth, write_events
from shopseq.users.tasks import TASKS
from shopseq.users.train import TrainedTask, train_task

CONFIG = GeneratorConfig(n_events=80_000, n_days=80, seed=7, plant_user_signals=True)


def _generated() -> tuple[pa.Table, pa.Table]:
    return generate_events_with_truth(CONFIG)


@pytest.mark.slow
def test_planted_truth_is_consistent_with_the_log() -> None:
    events, truth = _generated()
    again, _ = _generated()
    assert events.equals(again)
    assert abs(events.num_rows - CONFIG.n_events) < 0.1 * CONFIG.n_events
    by_user = {r["user_id"]: r for r in truth.to_pylist()}
    sessions = events.group_by(["user_id", "session_id"]).aggregate([("ts", "min")])
    starts: dict[str, list[float]] = {}
    for row in sessions.to_pylist():
        starts.setdefault(row["user_id"], []).append(
            (row["ts_min"] - CONFIG.start).total_seconds() / 86_400
        )
    # Nobody comes back after leaving (a session starts on or before the day they left).
    left = [u for u in starts if by_user[u]["left_day"] is not None]
    assert left and all(max(starts[u]) < by_user[u]["left_day"] + 1 for u in left)
    # Steady users return at their habit: their median gap between session days follows it.
    steady = [
        (by_user[u]["habit_days"], float(np.median(np.diff(sorted(t)))))
        for u, t in starts.items()
        if by_user[u]["disengagement"] == 0 and len(t) >= 5
    ]
    assert len(steady) > 50
    assert spearmanr(*zip(*steady, strict=True)).statistic > 0.7
    with pytest.raises(ValueError, match="plant_user_signals=True"):
        generate_events_with_truth(GeneratorConfig(n_events=1000))


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    events, _ = _generated()
    log = root / "events.parquet"
    write_events(events, log, CONFIG)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def _trained(store_path: Path, task: str) -> tuple[TrainedTask, object]:
    config = PredictConfig(
        task=task,
        out=Path("unused"),
        n_estimators=120,
        snapshots=SnapshotConfig(n_train=3, step=timedelta(days=7)),
    )
    with open_store(store_path, read_only=True, threads=1) as store:
        events = store.table("events_prepared")
        plan = plan_snapshots(*event_time_range(events), config.labels, config.snapshots)
        train, valid, test = build_task_examples(events, config, plan)
    return train_task(TASKS[task], train, valid, test, config.labels), test


@pytest.mark.slow
def test_churn_model_sees_disengagement_where_inactivity_days_cannot(store_path: Path) -> None:
    trained, test = _trained(store_path, "churn")
    # Among owners inactive for under a week, days of inactivity say little; the planted
    # lengthening of the gaps says who is leaving.
    recent = test.column("recency_days") < 7
    y = test.y[recent]
    model = roc_auc(y, trained.test_predictions["lightgbm"][recent])
    rule = roc_auc(y, trained.test_predictions["inactive_days"][recent])
    assert model > rule + 0.05, (model, rule)


@pytest.mark.slow
def test_session_intent_model_sees_the_dwell_of_buying_sessions(store_path: Path) -> None:
    trained, test = _trained(store_path, "session-intent")
    model = roc_auc(test.y, trained.test_predictions["lightgbm"])
    rule = roc_auc(test.y, trained.test_predictions["carted_in_session"])
    assert model > rule + 0.08, (model, rule)


@pytest.mark.slow
def test_next_time_model_learns_habitual_returns(store_path: Path) -> None:
    trained, test = _trained(store_path, "next-time")
    model = mean_absolute_error(test.y, trained.test_predictions["lightgbm"])
    baseline = mean_absolute_error(test.y, trained.test_predictions["median_gap"])
    assert model < 0.6 * baseline, (model, baseline)
