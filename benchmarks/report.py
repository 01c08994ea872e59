"""Time ``shopseq report`` on the generated store, section by section (goal: < 40 s on 10 M events).

Usage: nice -n 10 python benchmarks/report.py [--events 10000000] [--threads 2] [--workdir DIR]
       [--no-report]  (print the figures only; docs/BENCHMARKS.md is left alone)

The store is the one ``benchmarks/analytics.py`` builds (generate -> Parquet -> ingest ->
prepare, in the same ``--workdir``, reused when present). The report runs with its defaults and
no artifacts (the analytics sections: the part that scales with the events). Writes the
"report" section of docs/BENCHMARKS.md: total and per-section wall time, threads, load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analytics import build_synthetic
from markdown_report import machine_line, write_section

from shopseq.prepare import PREPARED_TABLE
from shopseq.report import ReportConfig, write_report
from shopseq.store import open_store

GOAL_SECONDS = 40.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "shopseq-bench-analytics"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="print only; leave docs/BENCHMARKS.md alone"
    )
    args = parser.parse_args()
    store_path, _ = build_synthetic(args.workdir, args.events, args.threads)
    load_start = os.getloadavg()
    with open_store(store_path, read_only=True, threads=args.threads) as store:
        if store.connection is not None:
            store.connection.execute("SET enable_progress_bar = false")
        n_events = int(store.table(PREPARED_TABLE).count().execute())
        started, cpu = time.perf_counter(), time.process_time()
        summary = write_report(store, args.workdir / "report.html", ReportConfig())
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    load_end = os.getloadavg()
    print(f"report: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU", flush=True)
    print("wall", summary.seconds, "cpu", summary.cpu_seconds, "shared", summary.shared_seconds)
    verdict = "met" if seconds < GOAL_SECONDS else "NOT met"
    lines = [
        "## Report (`shopseq report`)",
        "",
        machine_line(args.threads),
        "",
        f"Generated store, {n_events:,} prepared events (`benchmarks/analytics.py`'s store); the "
        "report with its defaults, no artifacts. DuckDB threads "
        f"{args.threads}. 1-minute load average {load_start[0]:.1f} at the start, "
        f"{load_end[0]:.1f} at the end (2 cores, shared: wall time includes waiting for them).",
        "",
        f"**Whole report: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU** (this process, all "
        f"its threads, DuckDB's included); goal < {GOAL_SECONDS:.0f} s on 10 M events "
        f"— {verdict}. {summary.n_figures} charts, {summary.n_bytes / 1e6:.1f} MB.",
        "",
        "| section | wall s | share | CPU s |",
        "|---|---:|---:|---:|",
    ]
    total = sum(summary.seconds.values()) or 1.0
    lines += [
        f"| {name} | {s:.1f} | {s / total:.0%} | {summary.cpu_seconds.get(name, 0.0):.1f} |"
        for name, s in sorted(summary.seconds.items(), key=lambda kv: -kv[1])
        if s >= 0.05
    ]
    if summary.shared_seconds:
        lines += [
            "",
            "Results computed once and shared, each timed inside the first section that used it "
            "(the funnel, in the report's order): "
            + "; ".join(f"{name} {s:.1f} s" for name, s in summary.shared_seconds.items())
            + ". `ordered` is the events in session order (position and neighbours of each), "
            "read by the funnel, paths, transitions, states and patterns; `segments` the user "
            "segments, read by the funnel's per-segment view and the segments section.",
        ]
    if args.no_report:
        print("\n".join(lines))
        return
    path = write_section("report", "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
