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


def _planted_plan(directory: Path) -> None:
    """A response-mode plan from a planted spend history, written as `shopseq plan` writes it."""
    import numpy as np

    from shopseq.forecast.base import Forecast
    from shopseq.plan import CategoryValue, PlanConfig, ResponseFitConfig, fit_response, make_plan
    from shopseq.plan import write_plan as write
    from shopseq.plan.simulate import SimulationConfig, simulate_response

    sim = simulate_response(SimulationConfig(seed=0))
    fit = ResponseFitConfig(n_starts=2, n_draws=50)
    curves = {
        t: fit_response(t, sim.spend.spend[i], sim.orders[i], sim.days, fit)
        for i, t in enumerate(sim.spend.targets)
    }
    ids = ("total", *(f"total/{t}" for t in sim.spend.targets), "total/other")
    base = sim.baseline[:, -14:]
    mean = np.vstack([base.sum(axis=0), base, base[0]])
    ds = (sim.days[-1] + np.arange(1, 15)).astype("datetime64[us]")
    values = {sid: CategoryValue(1.0, 40.0, 1.0, 40.0) for sid in ids}
    forecast = Forecast(ids, ds, mean, {80: mean * 0.8}, {80: mean * 1.2})
    write(
        make_plan(forecast, values, PlanConfig(budget=8000.0, response=fit), curves=curves),
        directory,
    )


@pytest.fixture(scope="session")
def results_dir(prepared_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the stages write, in their real shapes: next-item leaderboard, forecasts, a plan."""
    from shopseq.forecast.backtest import BacktestConfig
    from shopseq.forecast.series import Metric, SeriesConfig
    from shopseq.nextitem.evaluation import RankingConfig
    from shopseq.runs.catalogue import NO_REFIT
    from shopseq.runs.forecast import ForecastJobConfig, run_forecast
    from shopseq.runs.nextitem import EvaluateConfig, evaluate_next_item, load_split
    from shopseq.sequences.protocols import SplitConfig

    out = tmp_path_factory.mktemp("results")
    split = load_split(prepared_store_path, SplitConfig(), 1)
    evaluation = EvaluateConfig(
        models=("popularity",),
        ranking=RankingConfig(n_bootstrap=50),
        max_cases=300,
        dataset="generated 30k",
        out=out,
    )
    evaluate_next_item(evaluation, split)
    job = ForecastJobConfig(
        series=SeriesConfig(metric=Metric.VIEWS, top_categories=3),
        backtest=BacktestConfig(horizon=7, n_folds=3, no_refit=NO_REFIT),
        models=("seasonal_naive", "moving_average", "auto_theta", "croston", "tsb"),
    )
    run_forecast(prepared_store_path, job, out)
    _planted_plan(out)
    nested = {
        "title": "Nested rows",
        "rows": [{"model": "a", "metrics": {"HR@10": 0.5, "NDCG@10": 0.25}, "tags": ["x", "y"]}],
    }
    (out / "nested.report.json").write_text(json.dumps(nested))
    return out


@pytest.fixture(scope="session")
def results_report_html(prepared_store_path: Path, results_dir: Path) -> Path:
    """The report of the prepared store with every stage's real artifacts beside it."""
    out = results_dir / "report.html"
    config = ReportConfig(artifact_dirs=(results_dir,), patterns=PatternConfig(min_support=0.005))
    with open_store(prepared_store_path, read_only=True, threads=1) as store:
        summary = write_report(store, out, config)
    assert not summary.warnings, summary.warnings
    return out
