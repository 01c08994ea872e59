"""Time every analysis on a 10 M-event generated store and on each event-log dataset in shared/.

Usage: nice -n 10 python benchmarks/analytics.py [--events 10000000] [--threads 2] [--workdir DIR]

The generated store is built once (generate -> Parquet -> ingest -> prepare) in ``--workdir``
(default: $TMPDIR/shopseq-bench-analytics) and reused by later runs. Each analysis runs once with
its default config on ``events_prepared``; DuckDB gets ``--threads`` threads, k-means 1 thread.
Writes the "analytics" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from markdown_report import machine_line, write_section

from shopseq.analyze import (
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    RetentionConfig,
    RuleConfig,
    SegmentConfig,
    TransitionConfig,
    association_rules,
    funnel,
    mine_patterns,
    paths,
    retention,
    segment_users,
    transitions,
)
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PREPARED_TABLE, PrepareConfig, prepare_events
from shopseq.report import ReportConfig, write_report
from shopseq.store import Store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GOAL_SECONDS = 30.0

#: (name, files under shared/data, layout). The s3rec files (one user per line) and the GCE-GNN
#: session lists have no layout (no users or no times): they are next-item benchmarks, not logs.
REAL = [
    ("taobao timeslice 110k", ["taobao-userbehavior/UserBehavior_timeslice_110k.csv"], "taobao"),
    ("taobao head users", ["taobao-userbehavior/UserBehavior_head_users.csv"], "taobao"),
    ("rees46 Oct first 17k", ["rees46-multi-category-store/2019-Oct_first17434rows.csv"], "rees46"),
    ("retailrocket sample", ["retailrocket/sample_retailrocket.csv"], "retailrocket-sessions"),
    ("diginetica views sample", ["diginetica/sample_train-item-views.csv"], "diginetica-views"),
    ("diginetica purchases", ["diginetica/train-purchases.csv"], "diginetica-purchases"),
    ("yoochoose raw sample", ["yoochoose/sample_yoochoose.dat"], "yoochoose-clicks"),
    ("yoochoose 100k train", ["yoochoose/yoochoose-clicks-100k_train_full.txt"], "session-rec"),
    ("online retail 531k", ["online-retail/online_retail_cleaned_531k.parquet"], "online-retail"),
    ("online retail 541k (no invoice)",
     ["online-retail/online_retail_541k_no_invoice_stockcode.parquet"], "online-retail-no-invoice"),
    ("cdnow master", ["cdnow/CDNOW_master.txt"], "cdnow"),
    ("amazon games (SASRec Video)", ["sequential-benchmarks/sasrec/Video.txt"], "user-item-lines"),
    ("amazon beauty (BERT4Rec)", ["sequential-benchmarks/bert4rec/beauty.txt"], "user-item-lines"),
]  # fmt: skip

ANALYSES: dict[str, Callable[[Any], Any]] = {
    "funnel (by session)": lambda e: funnel(e, FunnelConfig()),
    "funnel (by user, per category)": lambda e: funnel(
        e, FunnelConfig(by="user", breakdown="category")
    ),
    "paths + flows": lambda e: paths(e, PathsConfig()),
    "transitions": lambda e: transitions(e, TransitionConfig()),
    "patterns (PrefixSpan)": lambda e: mine_patterns(e, PatternConfig()),
    "rules (FP-Growth)": lambda e: association_rules(e, RuleConfig()),
    "segments (RFM + k-means)": lambda e: segment_users(e, SegmentConfig()),
    "retention (weekly)": lambda e: retention(e, RetentionConfig()),
}


def _what(name: str, result: Any) -> str:
    """One line of what the analysis found, so the timing is of real work."""
    if name.startswith("funnel"):
        first = result.overall.steps[0].n
        return f"{first:,} {result.by}s, conversion {result.overall.conversion:.2%}"
    if name.startswith("paths"):
        return f"{result.n_sessions:,} sessions, {len(result.flows)} flows"
    if name == "transitions":
        return f"{result.n_transitions:,} transitions"
    if name.startswith("patterns"):
        return (
            f"{result.n_frequent:,} patterns from {result.n_sequences:,} of "
            f"{result.n_sequences_total:,} sessions"
        )
    if name.startswith("rules"):
        return f"{result.n_rules:,} rules from {result.n_baskets:,} baskets"
    if name.startswith("segments"):
        return f"{result.n_users:,} users, k={result.k}"
    return f"{len(result.cohorts)} cohorts, {result.sessions.n_sessions:,} sessions"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _quiet(store: Store) -> Store:
    if store.connection is not None:
        store.connection.execute("SET enable_progress_bar = false")
    return store


def build_synthetic(workdir: Path, n_events: int, threads: int) -> tuple[Path, dict[str, float]]:
    store_path = workdir / f"synthetic-{n_events}.duckdb"
    setup_json = workdir / f"synthetic-{n_events}.setup.json"
    if store_path.exists():
        # Reused: report the setup times measured when this script built the store, if kept.
        return store_path, json.loads(setup_json.read_text()) if setup_json.exists() else {}
    setup: dict[str, float] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    config = GeneratorConfig(n_events=n_events, seed=0)
    log = workdir / f"synthetic-{n_events}.parquet"
    started = time.perf_counter()
    table = generate_events(config)
    setup["generate"] = time.perf_counter() - started
    started = time.perf_counter()
    write_events(table, log, config)
    setup["write parquet"] = time.perf_counter() - started
    del table
    tmp = store_path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    with _quiet(open_store(tmp, threads=threads)) as store:
        layout = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"])
        setup["ingest"], _ = _timed(lambda: ingest_files([log], layout, store))
        setup["prepare"], _ = _timed(lambda: prepare_events(store, PrepareConfig()))
    tmp.rename(store_path)
    setup_json.write_text(json.dumps(setup))
    return store_path, setup


def run_analyses(store: Store) -> list[tuple[str, float, str]]:
    events = store.table(PREPARED_TABLE)
    rows = []
    for name, analysis in ANALYSES.items():
        seconds, result = _timed(lambda a=analysis: a(events))
        rows.append((name, seconds, _what(name, result)))
        print(f"  {name}: {seconds:.2f} s  {rows[-1][2]}", flush=True)
    return rows


def main() -> None:
    # ibis 12 calls DuckDB's deprecated fetch_arrow_table(); keep the benchmark log readable.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ibis")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "shopseq-bench-analytics"
    )
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    print(f"synthetic store: {args.events:,} events", flush=True)
    store_path, setup = build_synthetic(args.workdir, args.events, args.threads)
    with _quiet(open_store(store_path, read_only=True, threads=args.threads)) as store:
        n_events = int(store.table(PREPARED_TABLE).count().execute())
        synthetic = run_analyses(store)
        report_path = args.workdir / "report.html"
        report_seconds, summary = _timed(lambda: write_report(store, report_path, ReportConfig()))
        print(f"  report: {report_seconds:.1f} s ({summary.n_bytes / 1e6:.1f} MB)", flush=True)

    lines = [
        "## Analytics (`shopseq analyze`, `shopseq report`)",
        "",
        machine_line(args.threads),
        "",
        f"### Generated store: {n_events:,} prepared events (`shopseq.synthetic`, seed 0)",
        "",
    ]
    lines.append(
        "Setup (once; reused by later runs): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items())
        + "."
        if setup
        else "Setup: store reused from an earlier run (its setup times were not kept)."
    )
    lines.append("")
    lines += [
        f"Goal: every analysis under {GOAL_SECONDS:.0f} s on 2 cores. Pattern mining runs on a "
        "seeded sample of at most 200,000 sessions; rules on at most 200,000 baskets (their "
        "defaults).",
        "",
        "| analysis | seconds | goal | what it found |",
        "|---|---:|:---:|---|",
    ]
    for name, seconds, what in synthetic:
        ok = "✓" if seconds < GOAL_SECONDS else "✗"
        lines.append(f"| {name} | {seconds:.1f} | {ok} | {what} |")
    lines.append(
        f"| whole report (profile + all sections) | {report_seconds:.1f} | | "
        f"{summary.n_figures} charts, {summary.n_bytes / 1e6:.1f} MB |"
    )

    if not args.skip_real and (SHARED / "README.md").is_file():
        lines += [
            "",
            "### Real datasets (shared/data; ingest + prepare, then each analysis)",
            "",
        ]
        short = ["funnel/session", "funnel/user+cat", "paths", "transitions", "patterns",
                 "rules", "segments", "retention"]  # fmt: skip
        lines.append("| dataset | layout | events | " + " | ".join(short) + " |")
        lines.append("|---|---|---:|" + "---:|" * len(short))
        for name, files, layout in REAL:
            paths_ = [SHARED / f for f in files]
            if not all(p.is_file() for p in paths_):
                continue
            print(f"{name}", flush=True)
            with _quiet(open_store(None, threads=args.threads)) as store:
                ingest_files(paths_, IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store)
                prepare_events(store, PrepareConfig())
                n = int(store.table(PREPARED_TABLE).count().execute())
                timings = run_analyses(store)
            cells = " | ".join(f"{s:.2f}" for _, s, _ in timings)
            lines.append(f"| {name} | {layout} | {n:,} | {cells} |")
        lines += [
            "",
            "Seconds per analysis. Not run: the S3-Rec files (one user per line) and the "
            "GCE-GNN session lists (no users, no times) are next-item benchmarks without an "
            "event-log layout.",
        ]
    lines += [
        "",
        f"1-minute load average of the shared machine: {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other agents were running; expect faster "
        "figures on an idle machine).",
    ]
    write_section("analytics", "\n".join(lines))


if __name__ == "__main__":
    main()
