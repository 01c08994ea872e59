"""`shopseq train` / `evaluate` / `recommend` end to end on a small generated log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.sequences import Vocabulary
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config = GeneratorConfig(n_events=8000, n_days=20, seed=3)
    log = root / "events.csv"
    write_events(generate_events(config), log, config)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def test_train_writes_a_complete_run_and_recommend_reads_it(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    code = run(["train", "--model", "markov", "--store", str(store_path), "--out", str(run_dir)])
    assert code == 0
    for name in (
        "config.json",
        "metrics.json",
        "manifest.json",
        "items.parquet",
        "owners.parquet",
        "histories.npz",
        "model/weights.npz",
    ):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "markov" and config["split"]["protocol"] == "time_cut"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    models = {row["model"] for row in metrics["rows"]}
    assert models == {"markov", "popularity"}  # never a metric without its baseline
    markov = next(r for r in metrics["rows"] if r["model"] == "markov")
    assert 0.0 <= markov["metrics"]["NDCG@10"] <= 1.0 and markov["exclude_seen"] is True

    user = Vocabulary.load("user", run_dir / "owners.parquet").ids[0].as_py()
    capsys.readouterr()
    assert run(["recommend", "--run", str(run_dir), "--user", user, "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert f"Top 5 for {user}" in out


def test_recommend_unknown_user_is_a_clear_error(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert (
        run(["train", "-m", "popularity", "--store", str(store_path), "--out", str(run_dir)]) == 0
    )
    capsys.readouterr()
    assert run(["recommend", "--run", str(run_dir), "--user", "no-such-user"]) == 2
    assert "user id 'no-such-user' is not in the vocabulary" in capsys.readouterr().err


def test_recommend_without_run_directory_is_an_artifact_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["recommend", "--run", str(tmp_path), "--user", "u1"]) == 1
    assert "is not a run directory" in capsys.readouterr().err


def test_train_rejects_unknown_model_and_bad_params(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["train", "-m", "nope", "--store", str(store_path)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert run(["train", "-m", "sknn", "--params", '{"kk": 3}', "--store", str(store_path)]) == 2
    assert "--params for sknn: kk: Extra inputs are not permitted" in capsys.readouterr().err


def test_evaluate_writes_leaderboard_with_baselines(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb"
    code = run(
        [
            "evaluate",
            "-m",
            "sknn",
            "--store",
            str(store_path),
            "--out",
            str(out),
            "--protocol",
            "leave_last_out",
        ]
    )
    assert code == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert {r["model"] for r in board["rows"]} == {"popularity", "markov", "itemknn", "sknn"}
    assert board["split"] == "leave_last_out"
    assert (out / "leaderboard.csv").read_text().startswith("dataset,split,model")
