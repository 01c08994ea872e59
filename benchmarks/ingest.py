"""Ingest and prepare throughput and peak memory, on the shared datasets and a generated 10 M log.

Each measured phase runs in its own Python process so its peak RSS is its own. Throughput is
events per second of wall time. Side by side in the same run, DuckDB's native CSV loader (no
validation, no quarantine) gives the ratio our validated ingest costs.

    python benchmarks/ingest.py                  # everything (10 M generated events)
    python benchmarks/ingest.py --events 2000000 --skip-shared
    python benchmarks/ingest.py --compare main --events 2000000   # before/after, side by side

``--compare REF`` measures what a change to ingest costs: it generates one log with
``shopseq generate``, then runs ``shopseq ingest`` on it with the code of git revision REF
("before", extracted with ``git archive``) and with this working tree ("after"), alternating the
order in every round, and records wall time, peak RSS, DuckDB threads and the load average
around every run (the machine is shared: only ratios within one run mean something).
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
    parser.add_argument("--compare", metavar="REF", help="Compare ingest with git revision REF.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of --compare.")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (--compare).")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(phase(args)))
        return
    if args.compare:
        compare(args)
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
