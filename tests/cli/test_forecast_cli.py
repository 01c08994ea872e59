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


def _planted_store(root: Path) -> tuple[Path, Path, object]:
    """A purchase log whose category orders respond to a planted spend history, and the spend."""
    import numpy as np
    import pyarrow as pa

    from shopseq.plan.simulate import SimulationConfig, simulate_response
    from shopseq.schema import EVENT_SCHEMA

    sim = simulate_response(SimulationConfig(seed=0))
    rng = np.random.default_rng(1)
    target_of, day_of = [], []
    for i, target in enumerate(sim.spend.targets):
        counts = sim.orders[i].astype(int)
        target_of += [target] * int(counts.sum())
        day_of += np.repeat(np.arange(len(counts)), counts).tolist()
    n = len(day_of)
    ts = (sim.days[np.array(day_of)].astype("datetime64[s]") + np.timedelta64(12, "h")).astype(
        "datetime64[us]"
    )
    price = np.array([sim.curves[t].revenue_per_order for t in target_of])
    table = pa.table(
        {
            "user_id": pa.array([f"u{k}" for k in rng.integers(0, 5000, n)]),
            "item_id": pa.array(
                [f"{t}-{k}" for t, k in zip(target_of, rng.integers(0, 20, n), strict=True)]
            ),
            "action": pa.array(["purchase"] * n),
            "ts": pa.array(ts, pa.timestamp("us")),
            "session_id": pa.array([None] * n, pa.string()),
            "category_id": pa.array(target_of),
            "price": pa.array(price, pa.float64()),
            "quantity": pa.array(np.ones(n, dtype=np.int32), pa.int32()),
            "query": pa.array([None] * n, pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
    path = root / "planted.duckdb"
    with open_store(path, threads=1) as store:
        store.write_arrow("events", table)
    spend = root / "spend.csv"
    lines = ["date,target,spend"]
    for i, target in enumerate(sim.spend.targets):
        for day, value in zip(sim.days, sim.spend.spend[i], strict=True):
            if value > 0:
                lines.append(f"{day},{target},{value:.2f}")
    spend.write_text("\n".join(lines) + "\n")
    return path, spend, sim


@pytest.mark.slow
def test_plan_with_a_spend_history_recovers_the_planted_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, spend, sim = _planted_store(tmp_path)
    args = ["plan", "--budget", "8400", "--horizon", "14", "--top-categories", "3",
            "--spend-history", str(spend), "--max-day", "800",
            "--store", str(store), "--out", str(tmp_path), "--threads", "1"]  # fmt: skip
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "Plan (response)" in out and "response curve bags" in out
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["mode"] == "response" and plan["rule"] == "marginal_return"
    # Recovered from the store's orders and the spend file: each planted value in its interval.
    for curve in plan["curves"]:
        truth = sim.curves[curve["target"]]
        for name in ("beta", "decay", "half", "shape"):
            lo, hi = curve["intervals"][name]
            assert lo <= getattr(truth, name) <= hi, (curve["target"], name, lo, hi)
    assert plan["comparison"]["difference"][0] > 0  # beats the proportional rule
    per_day: dict[str, float] = {}
    for row in plan["rows"]:
        per_day[row["demand_date"]] = per_day.get(row["demand_date"], 0.0) + row["budget"]
    assert max(per_day.values()) <= 800 + 1e-6
    assert sum(per_day.values()) == pytest.approx(8400.0, rel=1e-6)


def test_plan_flags_are_checked(store_path: Path, tmp_path: Path, capsys) -> None:
    base = ["plan", "--budget", "100", "--store", str(store_path), "--out", str(tmp_path)]
    assert run([*base, "--group", "nothing"]) == 2
    assert "--group: 'nothing'; expected NAME=CATEGORY,CATEGORY" in capsys.readouterr().err
    assert run([*base, "--max-target", "c01=lots"]) == 2
    assert "--max-target: 'c01=lots'; expected TARGET=AMOUNT" in capsys.readouterr().err
    assert run([*base, "--objective", "clicks"]) == 2
    assert "--objective: Input should be 'revenue' or 'orders'" in capsys.readouterr().err
    assert run([*base, "--spend-history", str(tmp_path / "none.csv")]) == 2
    assert "cannot read the spend history" in capsys.readouterr().err
    assert run([*base, "--closed", "2024-02-30"]) == 2
    assert "--closed: '2024-02-30' is not a date" in capsys.readouterr().err


def test_leaderboard_keeps_model_names_whole_at_80_columns(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    names = ["seasonal_naive", "moving_average", "auto_theta", "croston_sba", "tsb"]
    args = ["forecast", "--metric", "views", "--by", "total", "--horizon", "7",
            "--models", ",".join(names), "--store", str(store_path), "--out", str(tmp_path),
            "--threads", "1"]  # fmt: skip
    assert run(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    shown = {line.split("│")[1].strip() for line in rows}
    assert shown == {*names, "selected", "ensemble"}
    assert max(len(line) for line in rows) <= 80
