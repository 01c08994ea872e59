"""Ingest and prepare throughput and peak memory, on the shared datasets and a generated 10 M log.

Each measured phase runs in its own Python process so its peak RSS is its own. Throughput is
events per second of wall time. Side by side in the same run, DuckDB's native CSV loader (no
validation, no quarantine) gives the ratio our validated ingest costs.

    python benchmarks/ingest.py                  # everything (10 M generated events)
    python benchmarks/ingest.py --events 2000000 --skip-shared
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

SHARED_FILES = [
    ("taobao", "taobao-userbehavior/UserBehavior_timeslice_110k.csv"),
    ("taobao", "taobao-userbehavior/UserBehavior_head_users.csv"),
    ("retailrocket-sessions", "retailrocket/sample_retailrocket.csv"),
    ("rees46", "rees46-multi-category-store/2019-Oct_first17434rows.csv"),
    ("diginetica-views", "diginetica/sample_train-item-views.csv"),
    ("diginetica-purchases", "diginetica/train-purchases.csv"),
    ("yoochoose-clicks", "yoochoose/sample_yoochoose.dat"),
    ("session-rec", "yoochoose/yoochoose-clicks-100k_train_full.txt"),
    ("online-retail", "online-retail/online_retail_cleaned_531k.parquet"),
    ("online-retail-no-invoice", "online-retail/online_retail_541k_no_invoice_stockcode.parquet"),
    ("cdnow", "cdnow/CDNOW_master.txt"),
    ("user-item-lines", "sequential-benchmarks/sasrec/Video.txt"),
    ("user-item-lines", "sequential-benchmarks/bert4rec/beauty.txt"),
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(args: argparse.Namespace) -> dict[str, float]:
    """Run one phase in this process and return its figures."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.sequences import SequenceConfig, fetch_events, leave_last_out
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    out: dict[str, float] = {}
    store_path = Path(args.store) if args.store else None
    if args.phase == "generate":
        config = GeneratorConfig(n_events=args.events, seed=7)
        started = time.perf_counter()
        table = generate_events(config)
        out["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        report = write_events(table, Path(args.file), config)
        out["write_s"] = time.perf_counter() - started
        out["rows"] = report.n_rows_written
    elif args.phase == "ingest":
        with open_store(store_path, memory_limit=args.memory_limit) as store:
            started = time.perf_counter()
            report = ingest_files(
                [Path(args.file)], IngestConfig(layout=BUILTIN_LAYOUTS[args.layout]), store
            )
            out["seconds"] = time.perf_counter() - started
            out["rows"] = report.rows_read
            out["quarantined"] = report.rows_quarantined
            if args.prepare:
                started = time.perf_counter()
                prepared = prepare_events(store, PrepareConfig())
                out["prepare_s"] = time.perf_counter() - started
                out["sessions"] = prepared.sessions
    elif args.phase == "duckdb-native":
        import duckdb

        con = duckdb.connect(str(store_path))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        started = time.perf_counter()
        con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{args.file}', header=true)")
        out["seconds"] = time.perf_counter() - started
        out["rows"] = con.execute("SELECT count(*) FROM raw").fetchone()[0]  # type: ignore[index]
    elif args.phase == "prepare":
        with open_store(store_path, memory_limit=args.memory_limit) as store:
            started = time.perf_counter()
            report = prepare_events(store, PrepareConfig())
            out["dedupe_s"] = report.seconds["dedupe"]
            out["sessionize_s"] = report.seconds["sessionize"]
            out["seconds"] = time.perf_counter() - started
            out["rows"] = report.rows_out
            started = time.perf_counter()
            events = fetch_events(store.table("events_prepared"), SequenceConfig())
            split = leave_last_out(events)
            out["sequences_s"] = time.perf_counter() - started
            out["sequences"] = len(split.test.sequences)
    out["peak_mb"] = _peak_mb()
    return out


def run_phase(**kwargs: object) -> dict[str, float]:
    """Run a phase in a fresh process (so peak memory is measured per phase)."""
    cmd = [sys.executable, __file__, "--child"]
    for key, value in kwargs.items():
        if value is True:
            cmd.append(f"--{key.replace('_', '-')}")
        elif value is not None and value is not False:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure and write the 'ingest' section of docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(phase(args)))
        return

    lines = [
        f"## Ingest and prepare\n\n{machine_line()} DuckDB memory limit {args.memory_limit}; "
        "each phase in its own process (peak RSS of that process).\n"
    ]
    with tempfile.TemporaryDirectory(prefix="shopseq-bench-") as tmp:
        work = Path(tmp)
        log = work / "events.csv"
        gen = run_phase(phase="generate", events=args.events, file=log)
        ing = run_phase(
            phase="ingest",
            file=log,
            store=work / "s.duckdb",
            layout="shopseq",
            memory_limit=args.memory_limit,
        )
        prep = run_phase(phase="prepare", store=work / "s.duckdb", memory_limit=args.memory_limit)
        native = run_phase(
            phase="duckdb-native",
            file=log,
            store=work / "native.duckdb",
            memory_limit=args.memory_limit,
        )
        size_mb = log.stat().st_size / 2**20
        n = ing["rows"]
        lines += [
            f"### Generated log: {int(n):,} events ({size_mb:,.0f} MB CSV)\n",
            "| phase | seconds | events/s | peak RSS (MB) | goal |",
            "|---|---:|---:|---:|---|",
            f"| generate (in memory) | {gen['generate_s']:.1f} | "
            f"{gen['rows'] / gen['generate_s']:,.0f} | {gen['peak_mb']:,.0f} | "
            "10 M well under a minute |",
            f"| write CSV | {gen['write_s']:.1f} | {gen['rows'] / gen['write_s']:,.0f} | | |",
            f"| **ingest** (validate every row, quarantine, lineage) | {ing['seconds']:.1f} | "
            f"{n / ing['seconds']:,.0f} | {ing['peak_mb']:,.0f} | >= 1 M events/s, < 3 GB |",
            f"| DuckDB native `read_csv` (no validation), same file | {native['seconds']:.1f} | "
            f"{native['rows'] / native['seconds']:,.0f} | {native['peak_mb']:,.0f} | reference |",
            f"| prepare: dedupe | {prep['dedupe_s']:.1f} | {n / prep['dedupe_s']:,.0f} | | |",
            f"| prepare: missing values + sessionise | {prep['seconds'] - prep['dedupe_s']:.1f} | "
            f"{n / (prep['seconds'] - prep['dedupe_s']):,.0f} | | |",
            f"| sequences + leave-last-out split | {prep['sequences_s']:.1f} | "
            f"{n / prep['sequences_s']:,.0f} | {prep['peak_mb']:,.0f} | |",
            f"| **sessionise + sequences** | "
            f"{prep['sessionize_s'] + prep['sequences_s']:.1f} | | | < 20 s for 10 M |",
            "",
            f"Validated ingest runs at **{native['seconds'] / ing['seconds']:.2f}x** the speed of "
            "DuckDB's own unvalidated CSV load of the same file (measured side by side).\n",
        ]
        if not args.skip_shared and SHARED.is_dir():
            lines += [
                "### Shared datasets (ingest + prepare, one process each)\n",
                "| file | layout | rows read | quarantined | ingest s | events/s | "
                "prepare s | sessions | peak RSS (MB) |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for layout, name in SHARED_FILES:
                path = SHARED / name
                if not path.exists():
                    continue
                r = run_phase(
                    phase="ingest",
                    file=path,
                    store=work / f"{path.stem}.duckdb",
                    layout=layout,
                    prepare=True,
                    memory_limit=args.memory_limit,
                )
                lines.append(
                    f"| {name} | {layout} | {int(r['rows']):,} | {int(r['quarantined']):,} | "
                    f"{r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} | "
                    f"{r['prepare_s']:.2f} | "
                    f"{int(r['sessions']):,} | {r['peak_mb']:,.0f} |"
                )
    path = write_section("ingest", "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
