"""Forecast accuracy and speed: real event logs (daily or hourly series) and 1,000 generated series.

Parts (each caches its figures as JSON so a long run can be resumed and reported separately):

    real        every event-log dataset in ../shared/data: ingest + prepare with its layout,
                daily series where the log is long enough for a 3-fold daily backtest, else
                hourly; all models incl. LightGBM and the MLP
    default100  the default line-up (seasonal naive, AutoETS, AutoCES, AutoTheta refitted per
                fold; approximate AutoARIMA fitted once) on 100 generated series x 3 folds
    global1000  LightGBM (global) and the MLP on the 1,000 generated series
    default1000 the default line-up on the 1,000 generated series

    nice -n 10 python benchmarks/forecast.py                      # everything, then the report
    python benchmarks/forecast.py --parts real default100 --no-report
    python benchmarks/forecast.py --report-only

statsforecast models run in-process, one series after another (``n_jobs=1``: the machine is
shared); LightGBM and torch use 1 thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
THREADS = 1

# (name, layout, files, restrict to [start, end) or None, metrics)
DATASETS: list[tuple[str, str, list[str], tuple[str, str] | None, list[str]]] = [
    ("taobao timeslice", "taobao", ["taobao-userbehavior/UserBehavior_timeslice_110k.csv"], None,
     ["views", "purchases"]),
    ("taobao head users", "taobao", ["taobao-userbehavior/UserBehavior_head_users.csv"],
     ("2017-11-25", "2017-12-04"), ["views", "carts", "purchases", "users"]),
    ("rees46", "rees46", ["rees46-multi-category-store/2019-Oct_first17434rows.csv"], None,
     ["views"]),
    ("retailrocket sessions", "retailrocket-sessions", ["retailrocket/sample_retailrocket.csv"],
     None, ["views", "users"]),
    ("diginetica views", "diginetica-views", ["diginetica/sample_train-item-views.csv"], None,
     ["views", "users"]),
    # eventdate + timeframe puts 2,245 purchases months after the file's last date (2016-06-17);
    # keep the file's own date range.
    ("diginetica purchases", "diginetica-purchases", ["diginetica/train-purchases.csv"],
     ("2016-01-02", "2016-06-18"), ["purchases", "users"]),
    ("yoochoose 100k", "session-rec", ["yoochoose/yoochoose-clicks-100k_train_full.txt",
                                       "yoochoose/yoochoose-clicks-100k_test.txt"], None,
     ["views", "users"]),
    ("online retail", "online-retail", ["online-retail/online_retail_cleaned_531k.parquet"], None,
     ["purchases", "users", "revenue"]),
    ("cdnow", "cdnow", ["cdnow/CDNOW_master.txt"], None, ["purchases", "users", "revenue"]),
]  # fmt: skip

DEFAULT = ("seasonal_naive", "auto_ets", "auto_ces", "auto_theta", "auto_arima")
EVERYTHING = (*DEFAULT, "moving_average", "lightgbm", "mlp")


def _models(names: tuple[str, ...], horizon: int) -> dict[str, Any]:
    from shopseq.runs.catalogue import ForecasterSettings, make_forecasters

    return make_forecasters(names, ForecasterSettings(horizon, THREADS))


def _config(horizon: int, folds: int = 3) -> Any:
    from shopseq.forecast.backtest import BacktestConfig
    from shopseq.runs.catalogue import NO_REFIT

    return BacktestConfig(horizon=horizon, n_folds=folds, no_refit=NO_REFIT)


def _summary(result: Any) -> dict[str, Any]:
    """Leaderboard rows plus per-series MASE of every model (for cross-dataset tallies)."""
    board = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in result.leaderboard().iter_rows(named=True)
    ]
    per_series = {m: [None if not np.isfinite(v) else float(v) for v in vals]
                  for m, vals in result.per_series("mase").items()}  # fmt: skip
    # Selected vs seasonal naive on the folds both scored (selection skips the first fold).
    base = result.metric("mase", "seasonal_naive")
    wins: dict[str, list[bool]] = {}
    for derived in ("selected", "ensemble"):
        if derived not in result.forecasts:
            continue
        sel = result.metric("mase", derived)
        both = np.isfinite(sel) & np.isfinite(base)
        a = np.where(both, sel, 0).sum(0) / np.maximum(both.sum(0), 1)
        b = np.where(both, base, 0).sum(0) / np.maximum(both.sum(0), 1)
        ok = both.any(0)
        wins[derived] = [bool(x) for x in (a < b)[ok]]
    cov = {}
    for model in result.forecasts:
        for lv in result.levels:
            c = result.metric(f"coverage-{lv}", model)
            cov[f"{model}:{lv}"] = float(np.nanmean(c)) if np.isfinite(c).any() else None
    return {"leaderboard": board, "per_series": per_series, "wins": wins,
            "ids": list(result.ids), "coverage": cov}  # fmt: skip


def part_real() -> dict[str, Any]:
    from shopseq.errors import InputError
    from shopseq.forecast.backtest import backtest, cutoffs
    from shopseq.forecast.series import Freq, Metric, SeriesConfig, build_series, season_length
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.prepare.pipeline import PREPARED_TABLE
    from shopseq.store import open_store

    out: dict[str, Any] = {}
    for name, layout, files, window, metrics in DATASETS:
        paths = [SHARED / f for f in files]
        if not all(p.exists() for p in paths):
            out[name] = {"status": "missing"}
            continue
        entry: dict[str, Any] = {"layout": layout, "files": files, "series": {}}
        with open_store(None, threads=THREADS) as store:
            started = time.perf_counter()
            ingest_files(paths, IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store)
            prepare_events(store, PrepareConfig())
            entry["ingest_prepare_s"] = time.perf_counter() - started
            table = store.table(PREPARED_TABLE)
            start = end = None
            if window:
                start, end = (datetime.fromisoformat(w) for w in window)
            chosen = None
            for freq, horizon in ((Freq.DAY, 14), (Freq.HOUR, 24)):
                probe = build_series(
                    table,
                    SeriesConfig(metric=Metric.VIEWS, freq=freq, by="total", start=start, end=end),
                )
                try:
                    cutoffs(probe.panel.n_periods, season_length(freq), _config(horizon))
                except InputError as err:  # too short for this frequency
                    entry.setdefault("too_short", {})[freq.value] = (
                        f"{probe.panel.n_periods} periods: {err}"
                    )
                    continue
                chosen = (freq, horizon)
                break
            entry["range"] = [str(probe.report.first_period), str(probe.report.last_period)]
            if chosen is None:
                entry["status"] = "too short for a daily or hourly 3-fold backtest"
                out[name] = entry
                print(name, entry["status"], flush=True)
                continue
            freq, horizon = chosen
            entry["freq"], entry["horizon"] = freq.value, horizon
            for metric in metrics:
                series = build_series(
                    table,
                    SeriesConfig(
                        metric=Metric(metric), freq=freq, by="total", start=start, end=end
                    ),
                )
                panel = series.panel
                if np.nansum(panel.y) <= 0:
                    continue
                models = _models(EVERYTHING, horizon)
                first = int(cutoffs(panel.n_periods, panel.season_length, _config(horizon))[0])
                from shopseq.forecast.base import min_periods

                skipped = {m: min_periods(models[m], panel) for m in list(models)
                           if min_periods(models[m], panel) > first}  # fmt: skip
                for m in skipped:
                    del models[m]
                started = time.perf_counter()
                result = backtest(panel, models, _config(horizon))
                summary = _summary(result)
                summary.update(
                    seconds=time.perf_counter() - started,
                    n_periods=panel.n_periods,
                    gaps=len(series.report.gap_periods),
                    quiet_zero=series.report.empty_true_zero,
                    skipped={m: f"needs {n} periods" for m, n in skipped.items()},
                )
                entry["series"][metric] = summary
                print(
                    name,
                    metric,
                    freq.value,
                    panel.n_periods,
                    "periods",
                    f"{summary['seconds']:.1f}s",
                    flush=True,
                )
        entry["status"] = "ok"
        out[name] = entry
    return out


def synthetic_panel(n_series: int, length: int = 365, seed: int = 0) -> Any:
    """Series with known level, linear trend, weekly seasonality and count noise."""
    from shopseq.forecast.series import Freq, Panel

    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = np.exp(rng.uniform(np.log(5), np.log(2000), n_series))[:, None]
    trend = rng.uniform(-0.4, 1.0, n_series)[:, None] * level / length  # -40 %..+100 % a year
    amplitude = rng.uniform(0.0, 0.5, n_series)[:, None]
    phase = rng.integers(0, 7, n_series)[:, None]
    weekly = 1 + amplitude * np.sin(2 * np.pi * (t[None, :] + phase) / 7)
    mu = np.maximum(level + trend * t[None, :], 0.5) * weekly
    # Negative binomial noise (overdispersed counts, like real traffic), dispersion 20.
    y = rng.negative_binomial(20, 20 / (20 + mu)).astype(np.float64)
    ds = (np.datetime64("2023-01-02") + t).astype("datetime64[us]")
    return Panel(tuple(f"g{i:04d}" for i in range(n_series)), ds, y,
                 np.zeros_like(y, dtype=bool), Freq.DAY)  # fmt: skip


def part_synthetic(n_series: int, names: tuple[str, ...]) -> dict[str, Any]:
    from shopseq.forecast.backtest import backtest

    panel = synthetic_panel(1000).rows(np.arange(n_series))
    started, cpu = time.perf_counter(), time.process_time()
    result = backtest(panel, _models(names, 14), _config(14))
    summary = _summary(result)
    summary.update(
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        n_series=n_series,
        load=os.getloadavg(),
    )
    summary.pop("per_series")
    summary["per_series_mase_mean"] = {m: float(np.nanmean(v)) for m, v in
                                       result.per_series("mase").items()}  # fmt: skip
    print(n_series, names, f"{summary['seconds']:.1f}s", flush=True)
    return summary


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _board_table(board: list[dict[str, Any]], models: tuple[str, ...] | None = None) -> str:
    cols = ["model", "mase", "smape", "rmse", "coverage-80", "coverage-95", "beats_baseline",
            "seconds", "cpu_seconds", "failures"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in board:
        if models and row["model"] not in models:
            continue
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def report(cache: Path) -> str:
    parts = {p.stem: json.loads(p.read_text()) for p in sorted(cache.glob("*.json"))}
    made = {key: (part.pop("_command", "?"), part.pop("_measured", "")) for key, part in
            parts.items()}  # fmt: skip
    md = [
        "## Forecasting",
        "",
        machine_line(THREADS),
        "",
        "statsforecast models run one series after another in one process (n_jobs=1); "
        "LightGBM and torch use 1 thread. Backtests: 3 rolling origins, horizon 14 days "
        "(daily) or 24 hours (hourly), metrics averaged over series and folds; `selected` and "
        "`ensemble` are chosen per series on earlier folds only, so they are scored on folds 2-3. "
        "`beats_baseline` = share of series whose MASE is below seasonal naive's. "
        "Coverage is the share of true values inside the 80 % / 95 % intervals. "
        "Neural and LightGBM intervals are split-conformal (held-out last horizon).",
        "",
    ]
    md += ["Figures of each part were produced by (the report was assembled from their cache):", ""]
    md += [f"- `{key}`: `{cmd}` {when}" for key, (cmd, when) in made.items()] + [""]
    real = parts.get("real")
    if real:
        md += ["### Real event logs (../shared/data)", ""]
        md += ["| dataset | range | frequency used | series | note |", "|---|---|---|---|---|"]
        wins: dict[str, list[bool]] = {"ensemble": [], "selected": []}
        cov: dict[str, list[float]] = {}
        for name, entry in real.items():
            note = entry.get("status", "")
            short = entry.get("too_short", {})
            if entry.get("status") == "ok" and "D" in short:
                note = f"daily too short ({short['D'].split(':')[0]}): hourly"
            rng = " .. ".join(entry.get("range", []))
            md.append(
                f"| {name} | {rng} | {entry.get('freq', '-')} | "
                f"{', '.join(entry.get('series', {})) or '-'} | {note} |"
            )
            for summary in entry.get("series", {}).values():
                for derived, values in summary.get("wins", {}).items():
                    wins[derived] += values
                for key, value in summary["coverage"].items():
                    if value is not None:
                        cov.setdefault(key, []).append(value)
        ens, sel = wins["ensemble"], wins["selected"]
        md += [
            "",
            "Goal check, chosen forecast vs seasonal naive on MASE (folds 2-3, chosen on "
            "earlier folds only): the default **ensemble** (mean of the 3 best models per "
            f"series) beats it on **{sum(ens)} of {len(ens)}** real series; single-model "
            f"**selection** on {sum(sel)} of {len(sel)}.",
            "",
        ]
        md += [
            "Mean interval coverage over real series (nominal 80 / 95):",
            "",
            "| model | coverage-80 | coverage-95 |",
            "|---|---|---|",
        ]
        for model in (
            "seasonal_naive",
            "moving_average",
            "auto_ets",
            "auto_ces",
            "auto_theta",
            "auto_arima",
            "lightgbm",
            "mlp",
            "selected",
            "ensemble",
        ):
            c80, c95 = cov.get(f"{model}:80"), cov.get(f"{model}:95")
            if c80:
                md.append(
                    f"| {model} | {np.mean(c80):.3f} (n={len(c80)}) | "
                    f"{np.mean(c95 or [np.nan]):.3f} |"
                )
        md.append("")
        for name, entry in real.items():
            for metric, summary in entry.get("series", {}).items():
                md += [
                    f"#### {name}: {metric} per {entry['freq']} ({summary['n_periods']} "
                    f"periods, {summary['gaps']} gap periods flagged, {summary['quiet_zero']} "
                    f"quiet zero periods; backtest {summary['seconds']:.1f} s)",
                    "",
                ]
                if summary.get("skipped"):
                    md.append(
                        "Skipped: " + ", ".join(f"{k} ({v})" for k, v in summary["skipped"].items())
                    )
                    md.append("")
                md += [_board_table(summary["leaderboard"]), ""]
    for key, title in (("default100", "Default line-up, 100 generated series x 3 folds "
                        "(goal < 3 min)"),
                       ("default1000", "Default line-up, 1,000 generated series x 3 folds "
                        "(goal < 20 min)"),
                       ("global1000", "Global models, 1,000 generated series x 3 folds "
                        "(LightGBM goal < 60 s, MASE <= best local model)")):  # fmt: skip
        if key in parts:
            s = parts[key]
            md += [
                f"### {title}",
                "",
                f"Total backtest **{s['seconds']:.1f} s wall, {s['cpu_seconds']:.1f} s CPU** "
                f"(load average {s['load'][0]:.1f} on 2 cores during the run, so wall time is "
                f"inflated by other jobs; {s['n_series']} series, 365 days each: level, linear "
                "trend, weekly seasonality, negative-binomial noise).",
                "",
                _board_table(s["leaderboard"]),
                "",
            ]
    if "default100" in parts and "global1000" in parts and "default1000" not in parts:
        d100 = parts["default100"]
        md += [
            f"Default line-up cost per series (3 folds): {d100['cpu_seconds'] / 100:.2f} CPU-s, "
            f"so 1,000 series need about {d100['cpu_seconds'] * 10 / 60:.0f} CPU-min at "
            "n_jobs=1 (extrapolated; the 1,000-series run is in the `default1000` part).",
            "",
        ]
    if "default1000" in parts and "global1000" in parts:
        local = {
            r["model"]: r["mase"]
            for r in parts["default1000"]["leaderboard"]
            if r["model"] not in ("seasonal_naive", "selected", "ensemble")
        }
        best = min(local, key=lambda m: local[m])
        lgb = next(r for r in parts["global1000"]["leaderboard"] if r["model"] == "lightgbm")
        md += [
            f"LightGBM vs best local model on the same 1,000 series: MASE "
            f"{lgb['mase']:.3f} vs {best} {local[best]:.3f}; LightGBM backtest "
            f"{lgb['seconds']:.1f} s wall / {lgb['cpu_seconds']:.1f} s CPU vs "
            f"{parts['default1000']['cpu_seconds']:.1f} s CPU for the whole default line-up.",
            "",
        ]
    md[6:6] = _goals(parts)
    return "\n".join(md)


def _goals(parts: dict[str, Any]) -> list[str]:
    """The issue's goals, each checked against the figures below (computed, not typed in)."""
    out = ["**Goals** (checked from the figures in this section):", ""]
    real = parts.get("real", {})
    wins: list[bool] = []
    cov: dict[int, list[float]] = {80: [], 95: []}
    for entry in real.values():
        for summary in entry.get("series", {}).values() if isinstance(entry, dict) else ():
            wins += summary.get("wins", {}).get("ensemble", [])
            for lv in cov:
                value = summary["coverage"].get(f"ensemble:{lv}")
                if value is not None:
                    cov[lv].append(value)
    if wins:
        ok = sum(wins) > len(wins) / 2
        out.append(
            f"- chosen forecast (ensemble) beats seasonal naive on MASE on the majority of "
            f"real series: {sum(wins)} of {len(wins)} — {'met' if ok else 'NOT met'}"
        )
    if cov[80]:
        c80, c95 = float(np.mean(cov[80])), float(np.mean(cov[95]))
        ok = abs(c80 - 0.80) <= 0.05 and abs(c95 - 0.95) <= 0.05
        out.append(
            f"- interval coverage within 5 points of nominal (ensemble, real series): "
            f"{c80:.3f} / {c95:.3f} for 80 / 95 — {'met' if ok else 'NOT met'} (per-model "
            "figures below: several single models under-cover)"
        )
    for key, goal_s, n in (("default100", 180, 100), ("default1000", 1200, 1000)):
        if key in parts:
            s = parts[key]
            out.append(
                f"- default line-up, {n} series x 3 folds < {goal_s // 60} min: "
                f"{s['cpu_seconds']:.0f} s CPU ({'met' if s['cpu_seconds'] < goal_s else 'NOT met'}"
                f" in CPU time), {s['seconds']:.0f} s wall on the shared machine "
                f"({'met' if s['seconds'] < goal_s else 'NOT met'})"
            )
    if "global1000" in parts:
        lgb = next(r for r in parts["global1000"]["leaderboard"] if r["model"] == "lightgbm")
        out.append(
            f"- LightGBM global model, 1,000 series backtest < 60 s: {lgb['seconds']:.1f} s "
            f"wall — {'met' if lgb['seconds'] < 60 else 'NOT met'}"
        )
        if "default1000" in parts:
            local = [
                r
                for r in parts["default1000"]["leaderboard"]
                if r["model"] not in ("seasonal_naive", "selected", "ensemble")
            ]
            best = min(local, key=lambda r: r["mase"])
            ok = lgb["mase"] <= best["mase"]
            out.append(
                f"- ... with MASE no worse than the best local model: {lgb['mase']:.3f} vs "
                f"{best['model']} {best['mase']:.3f} — {'met' if ok else 'NOT met'}"
            )
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--parts", nargs="*", default=["real", "default100", "global1000", "default1000"]
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "shopseq-forecast-bench"
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for part in args.parts:
            if part == "real":
                figures = part_real()
            elif part == "default100":
                figures = part_synthetic(100, DEFAULT)
            elif part == "default1000":
                figures = part_synthetic(1000, DEFAULT)
            elif part == "global1000":
                figures = part_synthetic(1000, ("seasonal_naive", "lightgbm", "mlp"))
            else:
                sys.exit(f"unknown part {part!r}")
            if isinstance(figures, dict):
                figures["_command"] = "nice -n 10 python " + " ".join(sys.argv)
                figures["_measured"] = machine_line(THREADS)
            tmp = args.cache / f".{part}.json.tmp"
            tmp.write_text(json.dumps(figures, default=str))
            os.replace(tmp, args.cache / f"{part}.json")
    if not args.no_report:
        path = write_section("forecast", report(args.cache))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
