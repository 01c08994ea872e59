"""`shopseq train` / `evaluate` / `recommend` end to end on a small generated log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
        "vocab/items.parquet",
        "vocab/owners.parquet",
        "histories.npz",
        "popularity.npy",
        "model/weights.npz",
    ):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["layout"], manifest["version"], manifest["kind"]) == (
        "shopseq-run",
        1,
        "next_item",
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "markov" and config["split"]["protocol"] == "time_cut"
    # The split report is a JSON object, not a repr string (no `default=str` in the writers).
    assert isinstance(config["split_report"], dict)
    assert config["split_report"]["protocol"] == "time_cut"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    models = {row["model"] for row in metrics["rows"]}
    assert models == {"markov", "popularity"}  # never a metric without its baseline
    markov = next(r for r in metrics["rows"] if r["model"] == "markov")
    assert 0.0 <= markov["metrics"]["NDCG@10"] <= 1.0 and markov["exclude_seen"] is True

    user = Vocabulary.load("user", run_dir / "vocab" / "owners.parquet").ids[0].as_py()
    capsys.readouterr()
    assert run(["recommend", "--run", str(run_dir), "--user", user, "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert f"Top 5 for {user}" in out


def test_recommend_answers_an_unknown_user_with_popularity_or_the_session_so_far(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert run(["train", "-m", "markov", "--store", str(store_path), "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert run(["recommend", "--run", str(run_dir), "--user", "no-such-user", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "'no-such-user' is not in this run and no recent items were given" in out
    counts = np.load(run_dir / "popularity.npy")
    items = Vocabulary.load("item", run_dir / "vocab" / "items.parquet")
    top = items.decode(np.argsort(-counts[1:], kind="stable")[:3] + 1)
    assert all(str(item) in out for item in top)  # the three most popular training items

    first = top[0]
    assert run(["recommend", "--run", str(run_dir), "-u", "no-such-user", "--recent", first]) == 0
    out = capsys.readouterr().out
    assert "'no-such-user' is not in this run: from the 1 recent items given" in out


def test_recommend_serves_the_history_length_evaluation_used(
    store_path: Path, tmp_path: Path
) -> None:
    from shopseq.runs.nextitem import NextItemRun

    run_dir = tmp_path / "run"
    params = '{"max_len": 7, "hidden_size": 8, "n_epochs": 1}'
    args = ["train", "-m", "sasrec", "--params", params, "--store", str(store_path)]
    assert run([*args, "--out", str(run_dir)]) == 0
    loaded = NextItemRun.load(run_dir)
    assert loaded.history_len == 7 == loaded.model.max_history
    with np.load(run_dir / "histories.npz") as data:
        assert int(np.diff(data["offsets"]).max()) == 7  # cut as evaluation cut, not at 50
    assert json.loads((run_dir / "config.json").read_text())["history_len"] == 7


def test_recommend_refuses_a_run_of_another_layout_version(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert (
        run(["train", "-m", "popularity", "--store", str(store_path), "--out", str(run_dir)]) == 0
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    capsys.readouterr()
    assert run(["recommend", "--run", str(run_dir), "--user", "u1"]) == 1
    err = capsys.readouterr().err
    assert "run layout 'shopseq-run' version 99" in err and "reads 'shopseq-run' version 1" in err


def test_recommend_without_run_directory_is_an_artifact_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["recommend", "--run", str(tmp_path), "--user", "u1"]) == 1
    assert "is not a complete run directory (no manifest.json)" in capsys.readouterr().err


def test_train_rejects_unknown_model_and_bad_params(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["train", "-m", "nope", "--store", str(store_path)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert run(["train", "-m", "sknn", "--params", '{"kk": 3}', "--store", str(store_path)]) == 2
    assert "parameters of sknn: kk: Extra inputs are not permitted" in capsys.readouterr().err


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


def test_evaluate_prints_every_cell_whole_at_80_columns(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    args = ["evaluate", "-m", "sknn", "--store", str(store_path), "--out", str(tmp_path / "lb"),
            "--protocol", "leave_last_out"]  # fmt: skip
    assert run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    rule = next(i for i, line in enumerate(lines) if "────" in line)
    rows = lines[rule + 1 : rule + 5]
    assert {line.split()[0] for line in rows} == {"popularity*", "markov*", "itemknn*", "sknn*"}
    assert all("…" not in line and len(line) <= 80 for line in rows)  # every cell whole
