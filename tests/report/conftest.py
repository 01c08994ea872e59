"""A small generated, ingested and prepared store shared by the report tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.analyze import PatternConfig
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.report import ReportConfig, write_report
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events

LEADERBOARD = {
    "title": "Next-item leaderboard",
    "description": "Full-ranking metrics on the test split.",
    "tables": [
        {
            "title": "test",
            "columns": ["model", "hit@10", "ndcg@10"],
            "rows": [["popularity", 0.05, 0.02], ["sasrec", 0.21, 0.11]],
        }
    ],
    "charts": [
        {
            "title": "hit@10 by model",
            "kind": "bar",
            "x": ["popularity", "sasrec"],
            "series": [{"name": "hit@10", "y": [0.05, 0.21]}],
        }
    ],
}
FORECAST = {
    "charts": [
        {
            "title": "Daily purchases",
            "x": ["2024-05-01", "2024-05-02", "2024-05-03"],
            "series": [
                {"name": "forecast", "y": [10, 12, 11], "lower": [8, 9, 8], "upper": [12, 15, 14]}
            ],
        }
    ]
}


@pytest.fixture(scope="session")
def prepared_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB store with 30 k generated events, ingested and prepared."""
    root = tmp_path_factory.mktemp("report_store")
    config = GeneratorConfig(n_events=30_000, seed=3)
    log = root / "events.csv"
    write_events(generate_events(config), log, config)
    path = root / "shopseq.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


@pytest.fixture(scope="session")
def report_html(prepared_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the prepared store, with a leaderboard and a forecast artifact."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    (artifacts / "leaderboard.json").write_text(json.dumps(LEADERBOARD))
    (artifacts / "forecasts.json").write_text(json.dumps(FORECAST))
    out = artifacts / "out" / "report.html"
    config = ReportConfig(artifact_dirs=(artifacts,), patterns=PatternConfig(min_support=0.005))
    with open_store(prepared_store_path, read_only=True, threads=1) as store:
        summary = write_report(store, out, config)
    assert summary.path == out
    assert summary.n_bytes == out.stat().st_size
    assert len(summary.artifacts) == 2 and not summary.warnings
    return out


@pytest.fixture
def artifact_examples() -> tuple[dict, dict]:
    """A leaderboard and a forecast in the documented JSON shapes (docs/report.md)."""
    return LEADERBOARD, FORECAST
