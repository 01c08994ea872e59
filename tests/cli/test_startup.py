"""Light commands start fast: `--help`, `stats` and `ingest` never import the model libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shopseq.synthetic import GeneratorConfig, generate_events, write_events

HEAVY = ("torch", "statsforecast", "lightgbm", "sklearn", "hierarchicalforecast", "pyspark")
# Runs one command in a fresh interpreter and reports its exit code and which heavy modules it
# imported (measured in the process itself, so nothing imported by pytest can hide one).
PROBE = f"""
import json, sys
from shopseq.cli import run
code = run(sys.argv[1:])
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print("PROBE" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def _probe(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBE"))
    result: dict[str, object] = json.loads(line.removeprefix("PROBE"))
    return result


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = GeneratorConfig(n_events=2000, n_days=5, seed=1)
    path = tmp_path_factory.mktemp("startup") / "events.csv"
    write_events(generate_events(config), path, config)
    return path


def test_help_imports_no_model_library() -> None:
    assert _probe("--help") == {"code": 0, "heavy": []}


def test_ingest_and_stats_import_no_model_library(log: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    assert _probe("ingest", str(log), "--store", store) == {"code": 0, "heavy": []}
    assert _probe("stats", "--store", store) == {"code": 0, "heavy": []}


def test_the_probe_sees_a_heavy_import(log: Path, tmp_path: Path) -> None:
    # The probe must see torch where a command needs it, or the checks above prove nothing.
    store = str(tmp_path / "s.duckdb")
    assert _probe("ingest", str(log), "--store", store)["code"] == 0
    assert _probe("prepare", "--store", store)["code"] == 0
    args = ["train", "-m", "sasrec", "--params", '{"n_epochs": 1, "hidden_size": 8}', "--store"]
    result = _probe(*args, store, "--out", str(tmp_path / "run"))
    assert result["code"] == 0 and "torch" in result["heavy"]
