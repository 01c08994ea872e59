"""`shopseq predict` end to end on a small generated log: run directory, scored table, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shopseq.cli import run
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events

FAST = ["--estimators", "20", "--resamples", "10", "--horizon", "3d"]
SPANS = ["--churn-horizon", "5d", "--spend-horizon", "5d", "--step", "3d"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    config = GeneratorConfig(n_events=20_000, n_days=45, seed=4)
    log = root / "events.parquet"
    write_events(generate_events(config), log, config)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def test_predict_churn_writes_scores_reasons_and_the_leaderboard(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "churn"
    code = run(["predict", "churn", "--store", str(store_path), "--out", str(out), *FAST, *SPANS])
    assert code == 0, capsys.readouterr().err
    for name in ("manifest.json", "config.json", "metrics.json", "leaderboard.json",
                 "model/model.txt", "scored.parquet", "scored.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    assert json.loads((out / "manifest.json").read_text())["kind"] == "predict"
    # leaderboard.json is the report's table-and-chart shape; the board itself is in metrics.json.
    assert json.loads((out / "leaderboard.json").read_text())["tables"]
    board = json.loads((out / "metrics.json").read_text())["leaderboard"]
    models = {row["model"]: row for row in board["rows"]}
    assert {"lightgbm", "inactive_days", "bgnbd_p_alive"} <= set(models)
    assert models["inactive_days"]["baseline"] and not models["lightgbm"]["baseline"]
    assert 0.5 < models["lightgbm"]["test"]["roc_auc"] <= 1.0
    assert "vs_best_baseline" in models["lightgbm"]
    scored = pq.read_table(out / "scored.parquet")
    assert {"user_id", "score", "model", "reasons"} <= set(scored.schema.names)
    scores = scored.column("score").to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    if scored.column("model")[0].as_py() == "lightgbm":
        assert scored.column("reasons")[0].as_py().count(": ") >= 1
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "churn"
    assert "top" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "teleport"], "unknown task 'teleport'"),
        (["predict", "churn", "--horizon", "soon"], "--horizon: 'soon' is not a duration"),
        (["predict", "churn", "--positions", "1,x"], "--positions: '1,x' is not a list"),
        (["predict", "churn", "--train-snapshots", "9", "--horizon", "10d"], "training snapshots"),
        (["predict", "churn", "--model", "lightgbm,lstm"], "--model: unknown model(s) ['lstm']"),
        (["predict", "churn", "--model", "gru"], "--model: lightgbm is always fitted"),
    ],
)
def test_predict_rejects_bad_input_with_exit_2(
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = run([*args, "--store", str(store_path), "--out", str(tmp_path / "x")])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


@pytest.mark.slow
def test_predict_clv_and_session_intent_add_their_columns(store_path: Path, tmp_path: Path) -> None:
    clv = tmp_path / "clv"
    assert (
        run(["predict", "clv", "--store", str(store_path), "--out", str(clv), *FAST, *SPANS]) == 0
    )
    scored = pq.read_table(clv / "scored.parquet")
    assert {"clv", "clv_low", "clv_high", "p_alive"} <= set(scored.schema.names)
    rows = [r for r in scored.to_pylist() if r["clv"] is not None]
    assert rows and all(r["clv_low"] <= r["clv_high"] for r in rows)
    intent = tmp_path / "intent"
    args = ["predict", "session-intent", "--store", str(store_path), "--out", str(intent)]
    assert run([*args, *FAST, *SPANS, "--positions", "1,2,3"]) == 0
    board = json.loads((intent / "metrics.json").read_text())["leaderboard"]
    assert set(board["per_position"]["lightgbm"]) <= {"1", "2", "3"}
    scored = pq.read_table(intent / "scored.parquet")
    assert {"session_id", "k", "score"} <= set(scored.schema.names)
