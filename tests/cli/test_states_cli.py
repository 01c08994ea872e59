"""`shopseq analyze states` end to end on a small generated log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("states")
    config = GeneratorConfig(n_events=6000, n_days=10, seed=5)
    log = root / "events.csv"
    write_events(generate_events(config), log, config)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


def test_states_json_and_saved_features(demo_store: Path, capsys: pytest.CaptureFixture[str]):
    store = str(demo_store)
    capsys.readouterr()
    args = ["analyze", "states", "--max-states", "4", "--n-init", "1", "--store", store]
    assert run([*args, "--json", "--save"]) == 0
    data = json.loads(capsys.readouterr().out)
    k = len(data["model"]["names"])
    assert 2 <= k <= 4
    assert [c["n_states"] for c in data["candidates"]] == [2, 3, 4]
    assert len(data["states"]) == k
    assert sum(s["n_converting"] for s in data["states"]) >= 1
    with open_store(demo_store, read_only=True) as opened:
        saved = opened.table("session_states").to_pyarrow()
        n_sessions = opened.table("events_prepared").session_id.nunique().to_pyarrow().as_py()
    assert saved.num_rows == data["n_sessions"] == n_sessions
    assert f"state_prob_{k - 1}" in saved.column_names


def test_states_tables_and_bad_options(demo_store: Path, capsys: pytest.CaptureFixture[str]):
    store = str(demo_store)
    assert run(["analyze", "states", "--max-states", "3", "--n-init", "1", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "Conversion by state" in out and "State transitions" in out
    assert run(["analyze", "states", "--selection", "aic", "--store", store]) == 2
    assert "--selection" in capsys.readouterr().err
    assert (
        run(["analyze", "states", "--min-states", "5", "--max-states", "3", "--store", store]) == 2
    )
    assert "min_states (5) must not exceed max_states (3)" in capsys.readouterr().err
