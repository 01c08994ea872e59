"""`shopseq forecast` and `shopseq plan` end to end on a small generated log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fc")
    config = GeneratorConfig(n_events=60_000, n_days=70, n_categories=6, seed=3)
    path = root / "s.duckdb"
    with open_store(path, threads=1) as store:
        # The generated log is clean; forecasting reads `events` when there is no prepared table.
        store.write_arrow("events", generate_events(config))
    return path


def test_forecast_prints_a_leaderboard_and_writes_flat_json(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["forecast", "--metric", "views", "--by", "category", "--freq", "D", "--horizon", "7",
            "--models", "seasonal_naive,moving_average,auto_theta", "--top-categories", "3",
            "--store", str(store_path), "--out", str(tmp_path), "--threads", "1"]  # fmt: skip
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "seasonal_naive" in out and "ensemble" in out and "reconciled" in out
    board = json.loads((tmp_path / "forecast_leaderboard.json").read_text())
    assert {r["model"] for r in board} >= {"seasonal_naive", "moving_average", "auto_theta"}
    forecasts = json.loads((tmp_path / "forecasts.json").read_text())
    assert len(forecasts) == 5 * 7  # total + 3 categories + other, 7 days
    row = forecasts[0]
    assert set(row) >= {"unique_id", "ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95", "model"}
    by_day: dict[str, float] = {}
    total: dict[str, float] = {}
    for r in forecasts:
        if r["unique_id"] == "total":
            total[r["ds"]] = r["mean"]
        else:
            by_day[r["ds"]] = by_day.get(r["ds"], 0.0) + r["mean"]
    for day, value in total.items():
        assert value == pytest.approx(by_day[day], rel=1e-6)


def test_plan_allocates_the_whole_budget(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["plan", "--budget", "5000", "--horizon", "7", "--top-categories", "3",
            "--store", str(store_path), "--out", str(tmp_path), "--threads", "1"]  # fmt: skip
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "Plan (proportional): budget 5,000.00" in out
    assert "Baseline demand, not uplift" in out
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["mode"] == "proportional"
    assert sum(r["budget"] for r in plan["rows"]) == pytest.approx(5000.0)
    # 'other' is reported, never funded by default.
    other = next(t for t in plan["targets"] if t["target"] == "other")
    assert not other["funded"] and other["budget"] == 0.0
    assert {r["target"] for r in plan["rows"]} == {t["target"] for t in plan["targets"]} - {"other"}
    assert (tmp_path / "plan.csv").exists()


def test_bad_flags_exit_2(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["forecast", "--freq", "W", "--store", str(store_path)]) == 2
    assert "'freq' parameter must be 'D' or 'h'" in capsys.readouterr().err
    assert run(["forecast", "--models", "prophet", "--store", str(store_path)]) == 2
    assert "unknown model(s) ['prophet']" in capsys.readouterr().err
    assert run(["forecast", "--strategy", "best", "--store", str(store_path)]) == 2
    assert "--strategy: Input should be 'ensemble' or 'select'" in capsys.readouterr().err


def test_forecast_strategy_select_is_honoured(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def chosen(strategy: str) -> set[str]:
        out = tmp_path / strategy
        args = ["forecast", "--metric", "views", "--horizon", "7", "--top-categories", "2",
                "--models", "seasonal_naive,moving_average,auto_theta", "--strategy", strategy,
                "--store", str(store_path), "--out", str(out), "--threads", "1"]  # fmt: skip
        assert run(args) == 0
        assert f"final forecast: {strategy} per series" in capsys.readouterr().out
        return {r["model"] for r in json.loads((out / "forecasts.json").read_text())}

    # select: one model per series; ensemble: the mean of the 3 best ('+'-joined).
    assert all("+" not in m for m in chosen("select"))
    assert all(m.count("+") == 2 for m in chosen("ensemble"))
