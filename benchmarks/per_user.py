"""Per-user predictions: CDNOW customer-base checks, every task on the real logs, 1 M-user speed.

Parts (each caches its figures as JSON in benchmarks/results/per_user/, so a long run can be
resumed and reported separately):

    cdnow       BG/NBD, Pareto/NBD, Gamma-Gamma on the CDNOW 1/10 sample (39-week calibration)
                against the published values, and the time of the whole CLV fit
    real        every task on every dataset in ../shared/data that has what it needs, through
                the same job as `shopseq predict` (runs.predict.predict_users)
    planted     every task on a generated log with planted per-user signals (known truth)
    speed       a generated store of 1 M users: features + LightGBM scoring of everyone, and
                TreeSHAP reasons for the top 10 k
    sequence    the sequence models (GRU4Rec's and SASRec's encoders with per-user heads) beside
                LightGBM and the best baseline, on one generated log with planted signals
                (next action, next time, session intent; --sequence-threads torch threads)

    nice -n 10 python benchmarks/per_user.py                      # everything, then the report
    python benchmarks/per_user.py --parts cdnow real --no-report
    python benchmarks/per_user.py --report-only
    nice -n 10 python benchmarks/per_user.py --parts speed --speed-store /tmp/speed.duckdb \
        --speed-against main --no-report    # keep the 10 M-event store; time main's features too

LightGBM, DuckDB and BLAS use 1 thread (the machine is shared), except the speed part, whose goal
is stated for 2 cores (``--speed-threads``, 2 by default). Every part records the command, its
threads and the 1-minute load average before and after it, beside its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "per_user"
THREADS = 1

# (name, layout, files, prepare with the data's sessions, tasks, horizons, snapshot step).
# Horizons follow each log's span: five label spans must fit (three training snapshots, one
# validation, one test).
REAL: list[dict[str, Any]] = [
    {"name": "cdnow", "layout": "cdnow", "files": ["cdnow/CDNOW_master.txt"],
     "tasks": ["purchase", "churn", "clv", "next-time"], "horizon": "12w", "step": "4w"},
    {"name": "online retail", "layout": "online-retail",
     "files": ["online-retail/online_retail_cleaned_531k.parquet"],
     "tasks": ["purchase", "churn", "clv", "next-time"], "horizon": "30d", "step": "14d"},
    {"name": "diginetica purchases", "layout": "diginetica-purchases",
     "files": ["diginetica/train-purchases.csv"],
     "tasks": ["purchase", "churn", "clv"], "horizon": "14d", "step": "7d"},
    {"name": "rees46 (2 h 50 min)", "layout": "rees46", "dataset_sessions": True,
     "files": ["rees46-multi-category-store/2019-Oct_first17434rows.csv"],
     "tasks": ["session-intent", "next-action", "next-time", "purchase"], "horizon": "20m",
     "step": "10m"},
    {"name": "taobao timeslice (2 h 10 min)", "layout": "taobao",
     "files": ["taobao-userbehavior/UserBehavior_timeslice_110k.csv"],
     "tasks": ["session-intent", "next-action", "next-time", "purchase"], "horizon": "15m",
     "step": "8m"},
    {"name": "yoochoose clicks 100k", "layout": "session-rec",
     "files": ["yoochoose/yoochoose-clicks-100k_train_full.txt",
               "yoochoose/yoochoose-clicks-100k_test.txt"],
     "tasks": ["next-time", "churn"], "horizon": "12h", "step": "6h"},
    {"name": "retailrocket sessions sample", "layout": "retailrocket-sessions",
     "dataset_sessions": True, "files": ["retailrocket/sample_retailrocket.csv"],
     "tasks": ["next-time", "churn"], "horizon": "14d", "step": "7d"},
]  # fmt: skip
NOT_RUN = [
    ("taobao head users", "43 users: too few owners for a held-out snapshot"),
    ("diginetica views sample", "views of mostly anonymous sessions (user NA); no purchases"),
    ("sequential benchmarks (Amazon, SASRec/BERT4Rec files)", "no timestamps: ordinal time"),
    ("yoochoose buys", "not in ../shared/data (only clicks)"),
]


def _duration(text: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


def _meta(threads: int) -> dict[str, Any]:
    """Where a part is being measured: command, threads, start time and load (added to at end)."""
    return {
        "command": "python " + " ".join(sys.argv),
        "threads": threads,
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": round(os.getloadavg()[0], 2),
    }


def _finish(meta: dict[str, Any]) -> dict[str, Any]:
    return meta | {"load_after": round(os.getloadavg()[0], 2)}


def _meta_line(meta: dict[str, Any] | None) -> str:
    if not meta:
        return "_Threads and load of this run were not recorded._"
    return (
        f"_Run {meta['started']}, threads {meta['threads']}, 1-min load average "
        f"{meta['load_before']} before / {meta.get('load_after', '?')} after (2 CPUs, shared), "
        f"command `{meta['command']}`._"
    )


def _save(part: str, payload: Any) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{part}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _load(part: str) -> Any:
    path = RESULTS / f"{part}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def part_cdnow() -> dict[str, Any]:
    import numpy as np

    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.store import open_store
    from shopseq.users import (
        BGNBD,
        GammaGamma,
        ParetoNBD,
        clv_intervals,
        customer_lifetime_value,
        customer_summary,
    )

    published = {
        "BGNBD": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        "ParetoNBD": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
        "GammaGamma": ({"p": 6.25, "q": 3.74, "gamma": 15.44}, -4055.92),
    }
    out: dict[str, Any] = {"models": {}}
    meta = _meta(1)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "s.duckdb", threads=1) as st:
        config = IngestConfig(layout=BUILTIN_LAYOUTS["cdnow-sample"])
        ingest_files([SHARED / "cdnow" / "CDNOW_sample.txt"], config, st)
        events = st.table("events")
        started = time.perf_counter()
        summary = customer_summary(events, datetime(1997, 10, 1))
        out["summary_s"] = time.perf_counter() - started
        out["customers"] = len(summary)
        out["repeat_customers"] = int((summary.frequency > 0).sum())
        fitted = {}
        for model in (BGNBD, ParetoNBD, GammaGamma):
            started = time.perf_counter()
            fit = model().fit(summary)
            seconds = time.perf_counter() - started
            params, ll = published[model.__name__]
            out["models"][model.__name__] = {
                "params": fit.params,
                "published": params,
                "log_likelihood": fit.log_likelihood_,
                "published_ll": ll,
                "seconds": seconds,
                "iterations": fit.n_iter_,
            }
            fitted[model.__name__] = fit
        started = time.perf_counter()
        clv = customer_lifetime_value(fitted["BGNBD"], fitted["GammaGamma"], summary)
        out["clv_s"] = time.perf_counter() - started
        out["whole_clv_fit_s"] = (
            out["summary_s"]
            + out["models"]["BGNBD"]["seconds"]
            + out["models"]["GammaGamma"]["seconds"]
            + out["clv_s"]
        )
        out["clv_mean"] = float(np.mean(clv))
        started = time.perf_counter()
        low, high = clv_intervals(fitted["BGNBD"], fitted["GammaGamma"], summary, n_resamples=200)
        out["clv_intervals_s"] = time.perf_counter() - started
        out["clv_interval_median_width"] = float(np.median(high - low))
        started = time.perf_counter()
        fitted["BGNBD"].update(summary)
        out["warm_update_s"] = time.perf_counter() - started
        out["warm_update_iterations"] = fitted["BGNBD"].n_iter_
    out["meta"] = _finish(meta)
    return out


def _store_for(spec: dict[str, Any], root: Path) -> Path:
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, SessionizeConfig, prepare_events
    from shopseq.store import open_store

    path = root / "s.duckdb"
    with open_store(path, threads=THREADS) as store:
        layout = BUILTIN_LAYOUTS[spec["layout"]]
        ingest_files([SHARED / f for f in spec["files"]], IngestConfig(layout=layout), store)
        sessions = SessionizeConfig(use_dataset_sessions=bool(spec.get("dataset_sessions")))
        prepare_events(store, PrepareConfig(sessionize=sessions))
    return path


def _task_row(result: Any) -> dict[str, Any]:
    board = result.leaderboard
    rows = {r["model"]: r for r in board.rows}
    best = rows[board.best_baseline]
    model = rows["lightgbm"]
    primary = board.primary
    return {
        "primary": primary,
        "higher_is_better": board.higher_is_better,
        "lightgbm": model["test"],
        "lightgbm_ci": model["ci"],
        "best_baseline": board.best_baseline,
        "baseline": best["test"],
        "vs_baseline": model.get("vs_best_baseline"),
        "chosen": board.chosen,
        "counts": result.counts,
        "seconds": result.seconds,
        "test_cutoff": str(result.plan.test),
        "per_position": board.per_position.get("lightgbm"),
    }


def _run_tasks(path: Path, tasks: list[str], horizon: str, step: str, root: Path) -> dict:
    from shopseq.errors import InputError
    from shopseq.runs.predict import PredictConfig, predict_users
    from shopseq.sequences import LabelConfig, SnapshotConfig

    span = _duration(horizon)
    labels = LabelConfig(
        next_event_horizon=span, purchase_horizon=span, churn_horizon=span, spend_horizon=span
    )
    out: dict[str, Any] = {}
    for task in tasks:
        config = PredictConfig(
            task=task,
            labels=labels,
            snapshots=SnapshotConfig(n_train=3, step=_duration(step)),
            threads=THREADS,
            out=root / f"predict-{task}",
        )
        started = time.perf_counter()
        try:
            result = predict_users(config, path)
        except InputError as err:
            out[task] = {"error": str(err)}
            print(f"  {task}: not evaluable: {err}", flush=True)
            continue
        out[task] = _task_row(result) | {"wall_s": time.perf_counter() - started}
        row = out[task]
        print(
            f"  {task}: lightgbm {row['primary']} {row['lightgbm'][row['primary']]:.4f} vs "
            f"{row['best_baseline']} {row['baseline'][row['primary']]:.4f} "
            f"({row['wall_s']:.0f} s)",
            flush=True,
        )
    return out


def part_real() -> dict[str, Any]:
    done = _load("real") or {}
    for spec in REAL:
        if spec["name"] in done:
            continue
        print(spec["name"], flush=True)
        meta = _meta(THREADS)
        with tempfile.TemporaryDirectory() as tmp:
            path = _store_for(spec, Path(tmp))
            done[spec["name"]] = {
                "horizon": spec["horizon"],
                "step": spec["step"],
                "tasks": _run_tasks(path, spec["tasks"], spec["horizon"], spec["step"], Path(tmp)),
                "meta": _finish(meta),
            }
        _save("real", done)  # resumable: one dataset at a time
    return done


def part_planted() -> dict[str, Any]:
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events_with_truth, write_events

    config = GeneratorConfig(n_events=500_000, seed=11, plant_user_signals=True)
    meta = _meta(THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events, _ = generate_events_with_truth(config)
        write_events(events, root / "events.parquet", config)
        path = root / "s.duckdb"
        with open_store(path, threads=THREADS) as store:
            ingest_files(
                [root / "events.parquet"], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store
            )
            prepare_events(store, PrepareConfig())
        tasks = ["purchase", "churn", "session-intent", "next-time", "next-action", "clv"]
        tasks_out = _run_tasks(path, tasks, "7d", "7d", root)
        return {"events": events.num_rows, "tasks": tasks_out, "meta": _finish(meta)}


def part_sequence(threads: int, n_events: int) -> dict[str, Any]:
    """Sequence models beside LightGBM and the baselines on a generated log (planted signals)."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.runs.predict import PredictConfig, predict_users
    from shopseq.sequences import LabelConfig, SnapshotConfig
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events_with_truth, write_events

    config = GeneratorConfig(n_events=n_events, seed=11, plant_user_signals=True)
    meta = _meta(threads)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events, _ = generate_events_with_truth(config)
        write_events(events, root / "events.parquet", config)
        path = root / "s.duckdb"
        with open_store(path, threads=1) as store:
            ingest_files(
                [root / "events.parquet"], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store
            )
            prepare_events(store, PrepareConfig())
        span = timedelta(days=7)
        labels = LabelConfig(
            next_event_horizon=span, purchase_horizon=span, churn_horizon=span, spend_horizon=span
        )
        for task in ("next-action", "next-time", "session-intent"):
            started = time.perf_counter()
            result = predict_users(
                PredictConfig(
                    task=task,
                    labels=labels,
                    snapshots=SnapshotConfig(n_train=3, step=span),
                    models=("lightgbm", "gru", "sasrec"),
                    threads=threads,
                    out=root / f"predict-{task}",
                ),
                path,
            )
            board = result.leaderboard
            rows = {r["model"]: r for r in board.rows}
            out[task] = {
                "primary": board.primary,
                "best_baseline": board.best_baseline,
                "chosen": board.chosen,
                "counts": result.counts,
                "seconds": result.seconds,
                "wall_s": time.perf_counter() - started,
                "rows": {
                    name: {"test": rows[name]["test"], "ci": rows[name]["ci"],
                           "vs_best_baseline": rows[name].get("vs_best_baseline")}
                    for name in ("lightgbm", "gru", "sasrec", board.best_baseline)
                },
            }  # fmt: skip
            p = board.primary
            print(
                f"  {task}: " + ", ".join(
                    f"{n} {r['test'][p]:.4f}" for n, r in out[task]["rows"].items()
                ) + f" ({out[task]['wall_s']:.0f} s)",
                flush=True,
            )  # fmt: skip
    return {"events": events.num_rows, "tasks": out, "meta": _finish(meta)}


def _speed_store(n_users: int, threads: int, path: Path) -> tuple[int, float | None]:
    """The generated speed store at ``path``: built there (and kept) unless it exists already.

    Returns the number of generated events and the build time (``None`` when it was reused).
    """
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    config = GeneratorConfig(n_events=10 * n_users, n_users=n_users, seed=5)
    events_file = path.with_suffix(".parquet")
    if path.exists() and events_file.exists():
        import pyarrow.parquet as pq

        return pq.ParquetFile(events_file).metadata.num_rows, None
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    events = generate_events(config)
    write_events(events, events_file, config)
    n_events = events.num_rows
    del events
    with open_store(path, threads=threads, memory_limit="4GB") as store:
        ingest_files([events_file], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return n_events, time.perf_counter() - started


def _features_at(ref: str, root: Path) -> Any:
    """``user_features`` as the git revision ``ref`` wrote it (its features.py, imported apart)."""
    import importlib.util
    import subprocess

    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:src/shopseq/sequences/features.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = root / f"features_{ref.replace('/', '_')}.py"
    path.write_text(source)
    name = f"_features_at_{ref.replace('/', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the config's annotations through it
    spec.loader.exec_module(module)
    return module.user_features


def _timed(run: Any) -> tuple[Any, dict[str, float]]:
    """``run()``, with its wall and CPU seconds (every thread of the process) and the load."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _max_difference(a: Any, b: Any) -> dict[str, Any]:
    """Compare two feature tables row for row (sorted by user): same columns, values, nulls."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if a.column_names != b.column_names or a.num_rows != b.num_rows:
        return {"same_shape": False, "columns": [a.column_names, b.column_names]}
    a, b = a.sort_by("user_id"), b.sort_by("user_id")
    worst, unequal = 0.0, []
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if not pc.all(pc.equal(pc.is_null(x), pc.is_null(y))).as_py():
            unequal.append(name)
        elif pa.types.is_floating(x.type):
            u = x.to_numpy(zero_copy_only=False)
            v = y.to_numpy(zero_copy_only=False)
            both = ~(np.isnan(u) | np.isnan(v))
            if not np.array_equal(np.isnan(u), np.isnan(v)):
                unequal.append(name)
            elif both.any():
                scale = np.maximum(np.abs(u[both]), np.abs(v[both]))
                rel = np.abs(u[both] - v[both]) / np.where(scale > 0, scale, 1.0)
                worst = max(worst, float(rel.max()))
        elif not pc.all(pc.fill_null(pc.equal(x, y), True)).as_py():
            unequal.append(name)
    return {"same_shape": True, "unequal_columns": unequal, "max_relative_difference": worst}


def part_speed(
    n_users: int, threads: int, store: Path | None, against: str | None, rounds: int
) -> dict[str, Any]:
    """Score every user of a generated 1 M-user store: features, LightGBM, TreeSHAP top 10 k.

    Building the store (generate, ingest, prepare) and training are not timed against the goal;
    the store is built with ``threads`` too, at ``store`` when given (kept and reused by the next
    run). ``against`` (a git revision) times that revision's ``user_features`` on the same store
    in the same process, alternating with the current one for ``rounds`` rounds, and checks that
    both give the same table.
    """
    import numpy as np

    from shopseq.prepare import PREPARED_TABLE
    from shopseq.sequences import LabelConfig, event_time_range, user_examples, user_features
    from shopseq.store import open_store
    from shopseq.users.gbm import GBM, GBMConfig
    from shopseq.users.reasons import reason_sentences
    from shopseq.users.tasks import TASKS, examples_from_table

    out: dict[str, Any] = {"users_asked": n_users, "against": against}
    meta = _meta(threads)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        path = store or root / "s.duckdb"
        out["events"], out["build_store_s"] = _speed_store(n_users, threads, path)
        old_features = _features_at(against, root) if against else None
        task = TASKS["churn"]
        with open_store(path, read_only=True, threads=threads) as opened:
            prepared = opened.table(PREPARED_TABLE)
            _, last = event_time_range(prepared)
            labels = LabelConfig()
            # Train on a 50 k-owner sample of one snapshot (training speed is not the goal here).
            cut = last - labels.span
            train_table = user_examples(prepared, cut, labels).to_pyarrow()
            pick = np.random.default_rng(0).choice(
                train_table.num_rows, min(50_000, train_table.num_rows), replace=False
            )
            train = examples_from_table(train_table.take(pick), task)
            model = GBM(GBMConfig(threads=threads)).fit(train)
            del train_table, train
            as_of = last + timedelta(seconds=1)
            timings: dict[str, list[dict[str, float]]] = {"current": [], "against": []}
            now = None
            for _ in range(rounds):
                if old_features is not None:
                    old, timing = _timed(lambda: old_features(prepared, as_of).to_pyarrow())
                    timings["against"].append(timing)
                now, timing = _timed(lambda: user_features(prepared, as_of).to_pyarrow())
                timings["current"].append(timing)
            assert now is not None
            out["feature_runs"] = timings
            out["features_s"] = min(t["wall_s"] for t in timings["current"])
            if old_features is not None:
                out["against_features_s"] = min(t["wall_s"] for t in timings["against"])
                out["same_as_against"] = _max_difference(now, old)
                del old
        out["users_scored"] = now.num_rows
        started = time.perf_counter()
        examples = examples_from_table(
            now, task, feature_names=model.feature_names_, unlabelled=True
        )
        out["matrix_s"] = time.perf_counter() - started
        out["matrix"] = {
            "dtype": str(examples.features.dtype),
            "c_contiguous": bool(examples.features.flags["C_CONTIGUOUS"]),
            "shape": list(examples.features.shape),
        }
        score, out["predict"] = _timed(lambda: model.predict(examples))
        out["predict_s"] = out["predict"]["wall_s"]
        # The same trees on one thread (a shared machine may give two threads less than one).
        _, out["predict_1_thread"] = _timed(
            lambda: model.booster_.predict(examples.features, raw_score=True, num_threads=1)
        )
        out["score_total_s"] = out["features_s"] + out["matrix_s"] + out["predict_s"]
        top = examples.subset(np.argsort(-score, kind="stable")[:10_000])
        started = time.perf_counter()
        contributions = model.contributions(top)
        out["treeshap_10k_s"] = time.perf_counter() - started
        started = time.perf_counter()
        reason_sentences(top, contributions)
        out["sentences_10k_s"] = time.perf_counter() - started
        out["trees"] = int(model.booster_.num_trees())
    out["meta"] = _finish(meta)
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def _not_beaten(datasets: Any) -> list[str]:
    """Sentences naming every row where LightGBM is not better than its best baseline."""
    worse, tied = [], []
    for name, entry in datasets:
        for task, row in entry["tasks"].items():
            versus = row.get("vs_baseline") or {}
            if "error" in row or "diff" not in versus:
                continue
            diff = versus["diff"] if row["higher_is_better"] else -versus["diff"]
            low, high = versus["ci_low"], versus["ci_high"]
            label = f"{name} {task} (vs {row['best_baseline']}, diff {_fmt(versus['diff'])})"
            if diff < 0 and not low <= 0 <= high:
                worse.append(label)
            elif low <= 0 <= high:
                tied.append(label)
    out = []
    if worse:
        out.append("**LightGBM is worse than its best baseline** on: " + "; ".join(worse) + ".")
    if tied:
        out.append(
            "Not distinguishable from its best baseline (the paired 95% interval holds 0) on: "
            + "; ".join(tied)
            + "."
        )
    return [" ".join(out), ""] if out else []


def _sequence_lines(data: Any) -> list[str]:
    if not data:
        return []
    lines = [
        "### Sequence models beside LightGBM and the best baseline (generated log, planted)",
        "",
        f"{data['events']:,} generated events, 7-day horizons, three training snapshots. `gru` and "
        "`sasrec` are GRU4Rec's and SASRec's encoders (imported from `nextitem`) over the owner's "
        "last 50 events before the cut-off, with a softmax (next action), a censored log-normal "
        "(next time) or an isotonic-calibrated logistic head (session intent); seed 0, torch "
        f"threads {data['meta']['threads']}, run with `nice -n 10 {data['meta']['command']}`.",
        "",
        _meta_line(data.get("meta")),
        "",
        "| task | metric | test examples | LightGBM | gru | sasrec | best baseline | baseline | "
        "gru vs baseline (p) | sasrec vs baseline (p) | chosen | wall s |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|---|---:|",
    ]
    for task, row in data["tasks"].items():
        p = row["primary"]
        r = row["rows"]

        def versus(name: str, r: dict[str, Any] = r) -> str:
            v = r[name].get("vs_best_baseline") or {}
            return f"{_fmt(v.get('diff'))} ({_fmt(v.get('p_value'), 2)})"

        lines.append(
            f"| {task} | {p} | {row['counts']['test']:,} | {_fmt(r['lightgbm']['test'][p])} | "
            f"{_fmt(r['gru']['test'][p])} | {_fmt(r['sasrec']['test'][p])} | "
            f"{row['best_baseline']} | {_fmt(r[row['best_baseline']]['test'][p])} | "
            f"{versus('gru')} | {versus('sasrec')} | {row['chosen']} | {row['wall_s']:.0f} |"
        )
    lines.append("")
    return lines


def _speed_lines(speed: dict[str, Any] | None) -> list[str]:
    if not speed:
        return []
    runs = speed.get("feature_runs") or {}
    current = runs.get("current") or []
    against = runs.get("against") or []
    lines = [
        "### Scoring speed: a generated store of "
        f"{speed['users_scored']:,} users ({speed['events']:,} events)",
        "",
        _meta_line(speed.get("meta")),
        "",
    ]
    if against:
        same = speed.get("same_as_against") or {}
        equal = same.get("same_shape") and not same.get("unequal_columns")
        lines += [
            f"Features of every user, this version beside `{speed['against']}`'s "
            "`user_features`, in the same process on the same store (alternating; wall and CPU "
            "seconds of every thread, 1-min load before each run):",
            "",
            "| run | version | wall s | CPU s | load |",
            "|---|---|---:|---:|---:|",
        ]
        for i, (old, new) in enumerate(zip(against, current, strict=False), 1):
            lines += [
                f"| {i} | {speed['against']} | {old['wall_s']:.1f} | {old['cpu_s']:.1f} | "
                f"{old['load_before']} |",
                f"| {i} | this | {new['wall_s']:.1f} | {new['cpu_s']:.1f} | {new['load_before']} |",
            ]
        ratio = speed["against_features_s"] / speed["features_s"]
        lines += [
            "",
            f"Best of each: {speed['against_features_s']:.1f} s -> {speed['features_s']:.1f} s "
            f"({ratio:.1f}x). Same table (every column, value and null, rows matched by user; "
            f"floats to a relative {same.get('max_relative_difference', float('nan')):.1e}): "
            f"**{'yes' if equal else 'no: ' + str(same)}**.",
            "",
        ]
    matrix = speed.get("matrix") or {}
    predict = speed.get("predict") or {}
    layout = (
        f" ({matrix['dtype']}, {'C-contiguous' if matrix['c_contiguous'] else 'not contiguous'}"
        f", {matrix['shape'][0]:,} x {matrix['shape'][1]})"
        if matrix
        else ""
    )
    cpu = f"{predict['cpu_s']:.1f}" if predict else ""
    lines += [
        "| step | seconds | CPU s | goal |",
        "|---|---:|---:|---|",
        f"| features of every user in the store (Ibis on DuckDB) | {speed['features_s']:.1f} | "
        f"{min((r['cpu_s'] for r in current), default=float('nan')):.1f} | |",
        f"| feature matrix (Arrow -> NumPy){layout} | {speed['matrix_s']:.1f} | | |",
        f"| LightGBM churn scores ({speed['trees']} trees, NumPy, {speed['meta']['threads']} "
        f"threads) | {speed['predict_s']:.1f} | {cpu} | |",
        *(
            [
                f"| (the same raw scores on 1 thread) | "
                f"{speed['predict_1_thread']['wall_s']:.1f} | "
                f"{speed['predict_1_thread']['cpu_s']:.1f} | |"
            ]
            if "predict_1_thread" in speed
            else []
        ),
        f"| **score everyone** | **{speed['score_total_s']:.1f}** | | < 60 s on 2 cores: "
        f"{'met' if speed['score_total_s'] < 60 else '**not met**'} |",
        f"| TreeSHAP reasons for the top 10 k | {speed['treeshap_10k_s']:.1f} | | < 60 s more: "
        f"{'met' if speed['treeshap_10k_s'] < 60 else '**not met**'} |",
        f"| their sentences | {speed['sentences_10k_s']:.1f} | | |",
        "",
    ]
    return lines


def _report() -> None:
    lines = [
        "## Per-user predictions",
        "",
        machine_line() + " Each part gives its own run time, threads and load.",
        "",
    ]
    cdnow = _load("cdnow")
    if cdnow:
        lines += [
            "### Customer-base models on CDNOW (1/10 sample, 39-week calibration)",
            "",
            f"{cdnow['customers']:,} customers, {cdnow['repeat_customers']:,} with repeat "
            "purchases (the published 2,357 and 946).",
            "",
            "| model | parameters (ours) | published | same to 3 significant digits | "
            "log-likelihood (ours / published) | within 0.1 | fit s |",
            "|---|---|---|---|---:|---|---:|",
        ]
        lines.insert(len(lines) - 4, _meta_line(cdnow.get("meta")) + "\n")
        for name, m in cdnow["models"].items():
            ours = ", ".join(f"{k} {v:.4g}" for k, v in m["params"].items())
            theirs = ", ".join(f"{k} {v}" for k, v in m["published"].items())
            published = m["published"].items()
            same = all(float(f"{m['params'][k]:.3g}") == float(f"{v:.3g}") for k, v in published)
            close = abs(m["log_likelihood"] - m["published_ll"]) <= 0.1
            lines.append(
                f"| {name} | {ours} | {theirs} | {'yes' if same else 'no'} | "
                f"{m['log_likelihood']:.2f} / {m['published_ll']} | {'yes' if close else 'no'} | "
                f"{m['seconds']:.3f} |"
            )
        lines += [
            "",
            f"Whole CLV fit (summary from the store + BG/NBD + Gamma-Gamma + 12-month CLV): "
            f"**{cdnow['whole_clv_fit_s']:.3f} s** (goal < 1 s). Bootstrap intervals (200 "
            f"resamples, both models refitted warm): {cdnow['clv_intervals_s']:.1f} s. Warm "
            f"update on the same summary: {cdnow['warm_update_s']:.3f} s, "
            f"{cdnow['warm_update_iterations']} iteration(s).",
            "",
        ]
    for part, title in (("real", "Real logs"), ("planted", "Generated log with planted signals")):
        data = _load(part)
        if not data:
            continue
        lines += [f"### {title}", ""]
        if part == "real":
            lines += [
                "Each row is `shopseq predict <task>` (same job) with three training snapshots, "
                "one validation and one test snapshot, every horizon set to the given span; the "
                "test snapshot is the data's last. Metric of the row: ROC-AUC (binary), macro-F1 "
                "(next action), MAE in seconds of the delay capped at the horizon (next time), "
                "Spearman (clv). Best baseline chosen on validation.",
                "",
            ]
            datasets = data.items()
            for name, entry in datasets:
                lines += [f"* {name}: " + _meta_line(entry.get("meta"))]
            lines += [""]
        else:
            lines += [f"{data['events']:,} events, 7-day horizons.", ""]
            lines += [_meta_line(data.get("meta")), ""]
            datasets = [("generated (planted)", {"horizon": "7d", "tasks": data["tasks"]})]
        lines += [
            "| data | horizon | task | test examples | LightGBM | 95% CI | best baseline | "
            "baseline | diff (p) | ECE (LightGBM) | wall s |",
            "|---|---|---|---:|---:|---|---|---:|---|---:|---:|",
        ]
        for name, entry in datasets:
            for task, row in entry["tasks"].items():
                if "error" in row:
                    lines.append(
                        f"| {name} | {entry['horizon']} | {task} | - | not evaluable: "
                        f"{row['error'][:140]} | | | | | | |"
                    )
                    continue
                p = row["primary"]
                versus = row["vs_baseline"] or {}
                lines.append(
                    f"| {name} | {entry['horizon']} | {task} | {row['counts']['test']:,} | "
                    f"{p} {_fmt(row['lightgbm'][p])} | {_fmt(row['lightgbm_ci'][0])}-"
                    f"{_fmt(row['lightgbm_ci'][1])} | {row['best_baseline']} | "
                    f"{_fmt(row['baseline'][p])} | {_fmt(versus.get('diff'))} "
                    f"({_fmt(versus.get('p_value'), 2)}) | {_fmt(row['lightgbm'].get('ece'))} | "
                    f"{row['wall_s']:.0f} |"
                )
        lines.append("")
        lines += _not_beaten(datasets)
        intent = [
            (name, row["per_position"])
            for name, entry in datasets
            for task, row in entry["tasks"].items()
            if task == "session-intent" and "per_position" in row and row["per_position"]
        ]
        for name, positions in intent:
            cells = ", ".join(
                f"k={k}: {_fmt(v.get('roc_auc'))}"
                for k, v in sorted(positions.items(), key=lambda kv: int(kv[0]))
            )
            lines += [f"Session intent on {name}, ROC-AUC by prefix length: {cells}.", ""]
    lines += _sequence_lines(_load("sequence"))
    lines += ["Not run: " + "; ".join(f"{n} ({why})" for n, why in NOT_RUN) + ".", ""]
    lines += _speed_lines(_load("speed"))
    write_section("per_user", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="*", default=["cdnow", "real", "planted", "speed"])
    parser.add_argument("--users", type=int, default=1_000_000, help="users of the speed store")
    parser.add_argument("--speed-threads", type=int, default=2, help="threads of the speed part")
    parser.add_argument(
        "--speed-store", type=Path, help="build the speed store here and keep it (reused if there)"
    )
    parser.add_argument(
        "--speed-against", help="git revision whose user_features to time beside the current one"
    )
    parser.add_argument("--speed-rounds", type=int, default=1, help="feature timings per version")
    parser.add_argument(
        "--sequence-threads", type=int, default=1, help="torch threads of the sequence part"
    )
    parser.add_argument(
        "--sequence-events", type=int, default=200_000, help="events of the sequence part's log"
    )
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if not args.report_only:
        for part in args.parts:
            print(f"== {part}", flush=True)
            if part == "cdnow":
                _save("cdnow", part_cdnow())
            elif part == "real":
                part_real()
            elif part == "planted":
                _save("planted", part_planted())
            elif part == "speed":
                _save(
                    "speed",
                    part_speed(
                        args.users,
                        args.speed_threads,
                        args.speed_store,
                        args.speed_against,
                        args.speed_rounds,
                    ),
                )
            elif part == "sequence":
                _save("sequence", part_sequence(args.sequence_threads, args.sequence_events))
    if not args.no_report:
        _report()


if __name__ == "__main__":
    main()
