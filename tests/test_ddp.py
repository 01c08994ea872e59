"""Data-parallel training: two gloo processes under torchrun end where one process ends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import ddp_worker
import numpy as np
import pytest

from shopseq.runtime import TorchRuntime

# Every test here starts two processes; bounded so a hung collective fails instead of waiting.
TIMEOUT_S = 300
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TORCHRUN, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def test_two_processes_reach_the_single_process_weights(tmp_path: Path) -> None:
    done = _torchrun(str(Path(ddp_worker.__file__)), str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    net, single = ddp_worker.fit(TorchRuntime(), batch_size=8, validate=True)
    expected = ddp_worker.weights(net)

    # The replicas are identical, and equal to one process fitting the union of their batches
    # (dense, small sparse and large sparse gradients; the last step has a batch on rank 0 only).
    assert ranks[0]["weights"] == ranks[1]["weights"]
    for name, values in expected.items():
        np.testing.assert_allclose(ranks[0]["weights"][name], values, rtol=1e-5, atol=1e-6)
    # Rank 0 validated (rank 1 would have raised); both kept epoch 2 and stopped after epoch 3.
    for rank in ranks:
        report = rank["report"]
        assert report["best_epoch"] == single["best_epoch"] == 2
        assert [e["valid_score"] for e in report["epochs"]] == pytest.approx([0.3, 0.8, 0.5])
        assert [e["processes"] for e in report["epochs"]] == [2, 2, 2]
        # Counts and losses are over both processes: the single process's.
        assert [e["n_targets"] for e in report["epochs"]] == [17, 17, 17]
        assert [e["n_sequences"] for e in report["epochs"]] == [17, 17, 17]
        np.testing.assert_allclose(
            [e["loss"] for e in report["epochs"]],
            [e["loss"] for e in single["epochs"]],
            rtol=1e-4,
        )
    assert (tmp_path / "best0.pt").is_file() and not (tmp_path / "best1.pt").exists()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    root = tmp_path_factory.mktemp("ddp")
    config = GeneratorConfig(n_events=4000, n_days=10, seed=5)
    log = root / "events.csv"
    write_events(generate_events(config), log, config)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def test_torchrun_shopseq_train_writes_one_run_from_rank_0(
    store_path: Path, tmp_path: Path
) -> None:
    from shopseq.runs.rundir import RunDir

    shopseq = Path(sys.executable).with_name("shopseq")
    params = '{"hidden_size": 8, "n_epochs": 2, "valid_sample": 200}'
    out = tmp_path / "run"
    args = ["-m", "sasrec", "--params", params, "--store", str(store_path), "--out", str(out)]
    done = _torchrun(str(shopseq), "train", *args, cwd=tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    RunDir.open(out, "next_item")  # complete, of this layout version
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["processes"] == 2
    assert metrics["training"]["epochs"] == 2
    # Only rank 0 speaks and writes: one leaderboard, one run directory, nothing else beside it.
    assert done.stdout.count("run directory:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_torchrun_refuses_a_model_that_does_not_train_with_torch(
    store_path: Path, tmp_path: Path
) -> None:
    shopseq = Path(sys.executable).with_name("shopseq")
    args = ["-m", "popularity", "--store", str(store_path), "--out", str(tmp_path / "run")]
    done = _torchrun(str(shopseq), "train", *args, cwd=tmp_path)

    # Each worker exits 2 with one line (torchrun then prints its own launcher traceback).
    # torchrun stops the other worker as soon as one fails, so the second line may never come.
    assert done.returncode != 0
    assert 1 <= done.stderr.count("error: popularity does not train with torch") <= 2
    assert done.stderr.count("exitcode  : 2") >= 1
    assert re.search(r'File "[^"]*shopseq/[^"]*\.py"', done.stderr) is None  # none of ours
    assert not (tmp_path / "run").exists()
