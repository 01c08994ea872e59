"""Ingest against DuckDB's own readers, side by side; peak memory at two file sizes.

Each run is its own Python process so its peak RSS (VmHWM) is its own. One generated log is
written as CSV and as Parquet (the same events); every round runs, in alternating order,
``ingest_files`` on the CSV, DuckDB's ``read_csv`` of the same CSV into a table, ``ingest_files``
on the Parquet file and DuckDB's ``read_parquet`` of it, each into a fresh DuckDB file with the
same threads and memory limit, timed from opening the store to closing it. The ratios
(reference seconds / ingest seconds) are taken per round and their median reported, with the
load average around every run (the machine is shared: only ratios within one run mean much).
A second, smaller log gives the peak memory at a second file size.

    python benchmarks/ingest.py                  # 10 M generated events, then the shared datasets
    python benchmarks/ingest.py --events 2000000 --skip-shared --threads 2
    python benchmarks/ingest.py --compare main --events 2000000   # before/after, side by side

``--compare REF`` measures what a change to ingest costs: it generates one log with
``shopseq generate``, then runs ``shopseq ingest`` on it with the code of git revision REF
("before", extracted with ``git archive``) and with this working tree ("after"), alternating the
order in every round, and records wall time, peak RSS, DuckDB threads and the load average
around every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
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
    """This process's own peak RSS (VmHWM; ru_maxrss may include the parent's, from the fork)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    if found is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(found.group(1)) / 1024


def phase(args: argparse.Namespace) -> dict[str, float]:
    """Run one phase in this process and return its figures."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.sequences import SequenceConfig, fetch_events, leave_last_out
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    out: dict[str, float] = {"load_before": os.getloadavg()[0]}
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
        if args.parquet:
            write_events(table, Path(args.parquet), config)  # the same events, typed
    elif args.phase == "ingest":
        started = time.perf_counter()
        with open_store(store_path, threads=args.threads, memory_limit=args.memory_limit) as store:
            report = ingest_files(
                [Path(args.file)], IngestConfig(layout=BUILTIN_LAYOUTS[args.layout]), store
            )
            out["rows"] = report.rows_read
            out["quarantined"] = report.rows_quarantined
            if args.prepare:
                out["ingest_s"] = time.perf_counter() - started
                prepared = prepare_events(store, PrepareConfig())
                out["prepare_s"] = time.perf_counter() - started - out["ingest_s"]
                out["sessions"] = prepared.sessions
        # Closing checkpoints the file: the data is on disk, as a user meets it.
        out["seconds"] = time.perf_counter() - started - out.get("prepare_s", 0.0)
    elif args.phase in ("duckdb-csv", "duckdb-parquet"):
        import duckdb

        reader = (
            f"read_csv('{args.file}', header=true)"
            if args.phase == "duckdb-csv"
            else f"read_parquet('{args.file}')"
        )
        started = time.perf_counter()
        con = duckdb.connect(str(store_path))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        if args.threads:
            con.execute(f"SET threads TO {int(args.threads)}")
        con.execute(f"CREATE TABLE raw AS SELECT * FROM {reader}")
        out["rows"] = con.execute("SELECT count(*) FROM raw").fetchone()[0]  # type: ignore[index]
        con.close()
        out["seconds"] = time.perf_counter() - started
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
    out["load_after"] = os.getloadavg()[0]
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


# VmHWM is the child's own peak RSS (ru_maxrss may include the parent's, inherited at fork).
_CHILD = """
import json, re, sys, time
from shopseq.cli import run
started = time.perf_counter()
code = run(sys.argv[1:])
seconds = time.perf_counter() - started
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
print("RESULT " + json.dumps({"code": code, "seconds": seconds, "peak_mb": peak}))
"""


def _cli(src: Path, args: list[str]) -> dict[str, object]:
    """Run ``shopseq ARGS`` with the package under ``src`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(src))
    before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    found = re.findall(r"^RESULT (.*)$", done.stdout, re.M)
    if not found:
        raise RuntimeError(f"shopseq {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, object] = json.loads(found[-1])
    counts = re.findall(
        r"read ([0-9,]+) = accepted ([0-9,]+) \+ quarantined ([0-9,]+)", done.stdout
    )
    result.update(wall=wall, load_before=before, load_after=os.getloadavg()[0])
    result["counts"] = counts[-1] if counts else None
    return result


def _hostile_peaks(
    work: Path, memory_limit: str, threads: list[str]
) -> list[tuple[str, str, dict[str, object]]]:
    """Peak memory of ``shopseq ingest`` on files with no line break at all (this tree)."""
    cases = [
        ("2 GB of zero bytes, headerless", "taobao", 2 << 30),
        ("256 MB of zero bytes as the header line", "shopseq", 256 << 20),
    ]
    found: list[tuple[str, str, dict[str, object]]] = []
    for label, layout, size in cases:
        path = work / f"zeros-{layout}.csv"
        with path.open("wb") as handle:
            handle.truncate(size)  # sparse: no disk used
        store = work / "hostile.duckdb"
        result = _cli(
            ROOT / "src",
            [
                "ingest",
                str(path),
                "--layout",
                layout,
                "--store",
                str(store),
                "--memory-limit",
                memory_limit,
                *threads,
            ],
        )
        counts = result["counts"]
        result["outcome"] = (
            f"read {counts[0]} = accepted {counts[1]} + quarantined {counts[2]}"
            if isinstance(counts, tuple)
            else "rejected whole"
        )
        found.append((label, layout, result))
        path.unlink()
        store.unlink(missing_ok=True)
        print(f"{label}: {result['peak_mb']:.0f} MB", file=sys.stderr)
    return found


def compare(args: argparse.Namespace) -> None:
    """Ingest one generated log with REF's code and with this tree's, side by side."""
    with tempfile.TemporaryDirectory(prefix="shopseq-compare-") as tmp:
        work = Path(tmp)
        ref_root = work / "ref"
        ref_root.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.compare, "src"],
            check=True,
            capture_output=True,
        )
        subprocess.run(["tar", "-x", "-C", str(ref_root)], input=archive.stdout, check=True)
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.compare],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "src"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        versions = {"before": ref_root / "src", "after": ROOT / "src"}
        log = work / "events.csv"
        gen = _cli(ROOT / "src", ["generate", str(log), "-n", str(args.events)])
        size_mb = log.stat().st_size / 2**20
        threads = ["--threads", str(args.threads)] if args.threads else []
        runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
        for round_no in range(args.rounds):
            order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
            for name in order:
                store = work / f"{name}-{round_no}.duckdb"
                result = _cli(
                    versions[name],
                    [
                        "ingest",
                        str(log),
                        "--store",
                        str(store),
                        "--memory-limit",
                        args.memory_limit,
                        *threads,
                    ],
                )
                if result["code"] != 0:
                    raise RuntimeError(f"{name} ingest exited {result['code']}")
                runs[name].append(result)
                store.unlink(missing_ok=True)
                print(
                    f"round {round_no + 1} {name}: {result['seconds']:.2f} s "
                    f"(load {result['load_before']:.2f})",
                    file=sys.stderr,
                )
        hostile = _hostile_peaks(work, args.memory_limit, threads)
    counts = {name: {tuple(r["counts"] or ()) for r in rs} for name, rs in runs.items()}
    med = {name: statistics.median(float(r["seconds"]) for r in rs) for name, rs in runs.items()}
    peak = {name: max(float(r["peak_mb"]) for r in rs) for name, rs in runs.items()}
    paired = statistics.median(
        float(a["seconds"]) / float(b["seconds"])
        for a, b in zip(runs["after"], runs["before"], strict=True)
    )
    n = args.events
    t_label = str(args.threads) if args.threads else f"DuckDB default (all {os.cpu_count()} cores)"
    lines = [
        "## Ingest guarantees: before and after (issue 9)\n",
        f"{machine_line()} One generated log of {n:,} events ({size_mb:,.0f} MB CSV, "
        f"`shopseq generate` in {float(gen['seconds']):.1f} s), ingested with `shopseq ingest` "
        f"by the code of `{args.compare}` ({commit}, before) and of this tree ({head}"
        f"{', uncommitted changes' if dirty else ''}, after), {args.rounds} rounds alternating "
        f"the order; DuckDB threads: {t_label}; memory limit {args.memory_limit}. Seconds are "
        "measured inside `shopseq.cli.run` (process start and imports excluded).\n",
        "| round | before s | after s | after / before | load avg before → after (1 min) |",
        "|---:|---:|---:|---:|---|",
    ]
    for i, (b, a) in enumerate(zip(runs["before"], runs["after"], strict=True)):
        lines.append(
            f"| {i + 1} | {float(b['seconds']):.2f} | {float(a['seconds']):.2f} | "
            f"{float(a['seconds']) / float(b['seconds']):.2f} | "
            f"{float(b['load_before']):.2f} → {float(b['load_after']):.2f}, "
            f"{float(a['load_before']):.2f} → {float(a['load_after']):.2f} |"
        )
    lines += [
        "",
        "| | before | after |",
        "|---|---:|---:|",
        f"| median seconds | {med['before']:.2f} | {med['after']:.2f} |",
        f"| events/s | {n / med['before']:,.0f} | {n / med['after']:,.0f} |",
        f"| peak RSS (MB) | {peak['before']:,.0f} | {peak['after']:,.0f} |",
        f"| counts (read, accepted, quarantined) | {', '.join(map(str, counts['before']))} | "
        f"{', '.join(map(str, counts['after']))} |",
        "",
        f"**after / before = {paired:.2f}** (median of the {args.rounds} paired rounds; ratio "
        f"of the medians {med['after'] / med['before']:.2f}; above 1 means the guarantees cost "
        "time).\n",
        "### Peak memory on hostile input (this tree)\n",
        "Files without a line break (sparse files of zero bytes), `shopseq ingest` in a fresh "
        "process; peak = the process's VmHWM. The reader's bound is `--max-line-bytes` (64 MB) "
        "+ 2 × the 16 MB block + 4 MB of decompression, over what the interpreter, the libraries "
        "and an open store take before reading anything.\n",
        "| input | layout | exit | outcome | seconds | peak RSS (MB) | load avg (1 min) |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for label, layout, result in hostile:
        lines.append(
            f"| {label} | {layout} | {result['code']} | {result['outcome']} | "
            f"{float(result['seconds']):.1f} | {float(result['peak_mb']):,.0f} | "
            f"{float(result['load_before']):.2f} → {float(result['load_after']):.2f} |"
        )
    lines += [
        "",
        f"Peak RSS of the generated-log ingest above: {peak['after']:,.0f} MB (memory limit "
        f"{args.memory_limit}).\n",
        "**Bound, for any input:** peak RSS ≤ the process before reading (interpreter, "
        "libraries, open store) + the reader's `max_line_bytes + 2 × 16 MB + 4 MB` (≈ 100 MB "
        "with the defaults) + DuckDB's `--memory-limit` (its buffer pool; the working set of "
        "one validated block). The two hostile files above stay within the first two terms.\n",
    ]
    path = write_section("ingest-guarantees", "\n".join(lines))
    print(f"wrote {path}")


def _ratio_rows(runs: dict[str, list[dict[str, float]]], rounds: int) -> list[str]:
    """One table row per round: seconds of each run and the two ratios of that round."""
    lines = [
        "| round | ingest CSV s | DuckDB `read_csv` s | ratio CSV | ingest Parquet s | "
        "DuckDB `read_parquet` s | ratio Parquet | load avg (1 min) before → after |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i in range(rounds):
        r = {name: runs[name][i] for name in runs}
        loads = ", ".join(
            f"{r[name]['load_before']:.2f} → {r[name]['load_after']:.2f}" for name in runs
        )
        lines.append(
            f"| {i + 1} | {r['ingest-csv']['seconds']:.2f} | {r['duckdb-csv']['seconds']:.2f} | "
            f"{r['duckdb-csv']['seconds'] / r['ingest-csv']['seconds']:.2f}x | "
            f"{r['ingest-parquet']['seconds']:.2f} | {r['duckdb-parquet']['seconds']:.2f} | "
            f"{r['duckdb-parquet']['seconds'] / r['ingest-parquet']['seconds']:.2f}x | {loads} |"
        )
    return lines


def main() -> None:
    """Measure and write the 'ingest' section of docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--small", type=int, default=None, help="Events of the second log (peak memory); events/5."
    )
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the side-by-side runs.")
    parser.add_argument(
        "--threads", type=int, default=None, help="DuckDB threads (default: every core)."
    )
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", metavar="REF", help="Compare ingest with git revision REF.")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(phase(args)))
        return
    if args.compare:
        compare(args)
        return

    threads = args.threads or os.cpu_count() or 1
    small = args.small or max(1, args.events // 5)
    lines = [
        f"## Ingest\n\n{machine_line(threads)} DuckDB memory limit {args.memory_limit}; every "
        "run in its own process (peak RSS = that process's VmHWM), seconds from opening the "
        "store to closing it (the data checkpointed on disk). The references load the same file "
        "into a table of a fresh DuckDB file with DuckDB's own reader and no validation "
        "(`CREATE TABLE raw AS SELECT * FROM read_csv(...)` / `read_parquet(...)`). The runs of "
        "a round alternate their order; ratio = reference seconds / ingest seconds (1.00x: as "
        "fast as DuckDB's own reader).\n"
    ]
    with tempfile.TemporaryDirectory(prefix="shopseq-bench-") as tmp:
        work = Path(tmp)
        logs = {"large": work / "events.csv", "small": work / "small.csv"}
        gen = run_phase(
            phase="generate",
            events=args.events,
            file=logs["large"],
            parquet=work / "events.parquet",
        )
        run_phase(
            phase="generate", events=small, file=logs["small"], parquet=work / "small.parquet"
        )
        common = {"threads": threads, "memory_limit": args.memory_limit}
        plan = {
            "ingest-csv": {"phase": "ingest", "file": logs["large"], "layout": "shopseq"},
            "duckdb-csv": {"phase": "duckdb-csv", "file": logs["large"]},
            "ingest-parquet": {
                "phase": "ingest",
                "file": work / "events.parquet",
                "layout": "shopseq",
            },
            "duckdb-parquet": {"phase": "duckdb-parquet", "file": work / "events.parquet"},
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
        for round_no in range(args.rounds):
            order = list(plan) if round_no % 2 == 0 else list(reversed(plan))
            for name in order:
                store = work / f"{name}.duckdb"
                runs[name].append(run_phase(**plan[name], **common, store=store))
                store.unlink(missing_ok=True)
                print(f"round {round_no + 1} {name}: {runs[name][-1]}", file=sys.stderr)
        peaks_small = {}
        for name, fmt in (("ingest-csv", "small.csv"), ("ingest-parquet", "small.parquet")):
            store = work / "small.duckdb"
            peaks_small[name] = run_phase(
                phase="ingest", file=work / fmt, layout="shopseq", store=store, **common
            )
            store.unlink(missing_ok=True)
        size_mb = logs["large"].stat().st_size / 2**20
        parquet_mb = (work / "events.parquet").stat().st_size / 2**20
        small_rows = int(peaks_small["ingest-csv"]["rows"])
        med = {n: statistics.median(r["seconds"] for r in rs) for n, rs in runs.items()}
        peak = {n: max(r["peak_mb"] for r in rs) for n, rs in runs.items()}
        ratio = {
            fmt: statistics.median(
                ref["seconds"] / ing["seconds"]
                for ref, ing in zip(runs[f"duckdb-{fmt}"], runs[f"ingest-{fmt}"], strict=True)
            )
            for fmt in ("csv", "parquet")
        }
        n = int(runs["ingest-csv"][0]["rows"])
        q = int(runs["ingest-csv"][0]["quarantined"])
        lines += [
            f"### Generated log: {n:,} events ({size_mb:,.0f} MB CSV, {parquet_mb:,.0f} MB "
            f"Parquet of the same events; generated in {gen['generate_s']:.1f} s, CSV written in "
            f"{gen['write_s']:.1f} s)\n",
            *_ratio_rows(runs, args.rounds),
            "",
            "| run | median s | events/s | peak RSS (MB) | goal |",
            "|---|---:|---:|---:|---|",
            f"| **ingest CSV** (validate every row, quarantine, lineage; {q:,} quarantined) | "
            f"{med['ingest-csv']:.2f} | {n / med['ingest-csv']:,.0f} | {peak['ingest-csv']:,.0f} "
            "| >= 0.8x `read_csv` |",
            f"| DuckDB `read_csv`, same file | {med['duckdb-csv']:.2f} | "
            f"{n / med['duckdb-csv']:,.0f} | {peak['duckdb-csv']:,.0f} | reference |",
            f"| **ingest Parquet** | {med['ingest-parquet']:.2f} | "
            f"{n / med['ingest-parquet']:,.0f} | {peak['ingest-parquet']:,.0f} "
            "| >= 0.8x `read_parquet` |",
            f"| DuckDB `read_parquet`, same file | {med['duckdb-parquet']:.2f} | "
            f"{n / med['duckdb-parquet']:,.0f} | {peak['duckdb-parquet']:,.0f} | reference |",
            "",
            f"**Validated ingest runs at {ratio['csv']:.2f}x DuckDB's own `read_csv` and "
            f"{ratio['parquet']:.2f}x its `read_parquet`** (median of the per-round ratios).\n",
            "### Peak memory at two file sizes\n",
            "| input | events | peak RSS (MB) | vs the small file |",
            "|---|---:|---:|---:|",
        ]
        for name, label in (("ingest-csv", "CSV"), ("ingest-parquet", "Parquet")):
            lo = peaks_small[name]["peak_mb"]
            lines += [
                f"| {label} | {small_rows:,} | {lo:,.0f} | |",
                f"| {label} | {n:,} | {peak[name]:,.0f} | {peak[name] / lo - 1:+.1%} |",
            ]
        growth = {
            label: peak[name] / peaks_small[name]["peak_mb"] - 1
            for name, label in (("ingest-csv", "CSV"), ("ingest-parquet", "Parquet"))
        }
        met = all(abs(g) <= 0.10 for g in growth.values())
        lines.append(
            "\nGoal (issue 16): peak memory of ingest independent of file size, within 10 %: "
            f"**{'met' if met else 'not met'}** ("
            + ", ".join(f"{k} {v:+.1%}" for k, v in growth.items())
            + ").\n"
        )
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
                    **common,
                )
                lines.append(
                    f"| {name} | {layout} | {int(r['rows']):,} | {int(r['quarantined']):,} | "
                    f"{r['ingest_s']:.2f} | {r['rows'] / r['ingest_s']:,.0f} | "
                    f"{r['prepare_s']:.2f} | "
                    f"{int(r['sessions']):,} | {r['peak_mb']:,.0f} |"
                )
    path = write_section("ingest", "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
