"""Scaling: 1 M -> 10 M -> 100 M generated events through ingest, prepare, features, one epoch.

Each stage runs as its own process through the product's own path (the ``shopseq`` CLI for
ingest, export and prepare; the library for features and the training epoch, which have no CLI
command of their own) on DuckDB and on local Spark. Wall time and the peak resident memory of
the stage's whole process tree (sampled from /proc every 0.2 s, so Spark's JVM counts) are
recorded with the machine's load average, and the growth exponent ``b`` of ``time ~ events^b``
is fitted per stage by least squares on log-log.

The log of N events is one CSV file (so ingest's memory is measured against the file's size),
written from 10 M-event shards of ``shopseq.synthetic`` (the generator ``shopseq generate``
runs, which holds a whole log in memory) with user ids prefixed per shard, each shard with its
own seed. Spark ingests the same CSV itself (``ingest.spark``: the same rules compiled to Spark
SQL) into its Parquet output, and its prepare and features start from there. Every generated
file is deleted after its size.

    nice python benchmarks/scaling.py --sizes 1000000 10000000 100000000
    nice python benchmarks/scaling.py --sizes 200000 1000000 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
SHARD = 10_000_000
DAYS = 120

# The epoch: SASRec with sampled softmax (full softmax over a 1 M-item catalogue does not fit).
SASREC = {"n_epochs": 1, "loss": "sampled_ce", "n_negatives": 1024, "hidden_size": 64}


# ---------------------------------------------------------------- stages run in child processes


def _cpu_seconds(store: Any = None) -> float:
    """CPU seconds used so far by this process (all threads) and by its Spark JVM, if any.

    CPU time is what a core-hour buys; on this shared 2-core machine wall time also holds
    the other engineers' load.
    """
    total = time.process_time()
    session = getattr(store, "spark_session", None)
    if session is not None:
        pid = session.sparkContext._gateway.proc.pid
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _write_log(path: Path, n_events: int) -> dict[str, Any]:
    import pyarrow.compute as pc

    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    rows = 0
    with path.open("wb") as out:
        for shard, lo in enumerate(range(0, n_events, SHARD)):
            n = min(SHARD, n_events - lo)
            config = GeneratorConfig(n_events=n, n_days=DAYS, seed=shard)
            table = generate_events(config)
            for column in ("user_id", "session_id") if shard else ():
                # Users (and sessions) of another shard are other users.
                i = table.schema.get_field_index(column)
                if i >= 0:
                    ids = pc.binary_join_element_wise(f"s{shard}-", table[column], "")
                    table = table.set_column(i, table.schema.field(column), ids)
            part = path.with_suffix(f".part{shard}.csv")
            report = write_events(table, part, config)
            rows += report.n_rows_written
            with part.open("rb") as src:
                if shard:
                    src.readline()  # one header
                shutil.copyfileobj(src, out, 16 << 20)
            part.unlink()
            del table
    return {"rows": rows, "bytes": path.stat().st_size}


def _ingest(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.store import open_store

    store_path = Path(args.store)
    with open_store(store_path, threads=args.threads, memory_limit=args.memory_limit) as store:
        started, cpu = time.perf_counter(), _cpu_seconds()
        report = ingest_files(
            [Path(args.file)], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store
        )
        return {
            "work_s": time.perf_counter() - started,
            "cpu_s": _cpu_seconds() - cpu,
            "rows": report.rows_read,
        }


def _ingest_spark(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig
    from shopseq.ingest.spark import ingest_on_spark
    from shopseq.runs.engine import open_engine_store

    # Spark's Python workers (quarantine messages) run this interpreter, as the CLI sets up.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.perf_counter()
    with open_engine_store(_engine(args), Path(), require_events=False) as store:
        opened, cpu = time.perf_counter(), _cpu_seconds(store)
        report = ingest_on_spark(
            [args.file], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store
        )
        return {
            "work_s": time.perf_counter() - opened,
            "cpu_s": _cpu_seconds(store) - cpu,
            "open_s": opened - started,
            "rows": report.rows_read,
        }


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.store import open_store

    with open_store(Path(args.store), read_only=True, threads=args.threads) as store:
        started, cpu = time.perf_counter(), _cpu_seconds()
        store.export_parquet("events", Path(args.spark_output))
        return {"work_s": time.perf_counter() - started, "cpu_s": _cpu_seconds() - cpu}


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.runs.engine import open_engine_store

    started = time.perf_counter()
    with open_engine_store(
        _engine(args), Path(args.store), threads=args.threads, memory_limit=args.memory_limit
    ) as store:
        opened, cpu = time.perf_counter(), _cpu_seconds(store)
        report = prepare_events(store, PrepareConfig())
        return {
            "work_s": time.perf_counter() - opened,
            "cpu_s": _cpu_seconds(store) - cpu,
            "open_s": opened - started,
            "rows": report.rows_out,
            "sessions": report.sessions,
            "steps": report.seconds,
        }


def _features(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.prepare import PREPARED_TABLE
    from shopseq.runs.engine import open_engine_store
    from shopseq.sequences import user_features

    started = time.perf_counter()
    with open_engine_store(_engine(args), Path(args.store), threads=args.threads) as store:
        opened, cpu = time.perf_counter(), _cpu_seconds(store)
        events = store.table(PREPARED_TABLE)
        as_of = events.ts.max().execute()
        table = store.materialize("user_features", user_features(events, as_of))
        rows = int(table.count().execute())
        return {
            "work_s": time.perf_counter() - opened,
            "cpu_s": _cpu_seconds(store) - cpu,
            "open_s": opened - started,
            "rows": rows,
        }


def _split(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.runs.nextitem import load_split
    from shopseq.sequences.protocols import SplitConfig

    started, cpu = time.perf_counter(), _cpu_seconds()
    split = load_split(Path(args.store), SplitConfig(), args.threads)
    return {
        "work_s": time.perf_counter() - started,
        "cpu_s": _cpu_seconds() - cpu,
        "train_events": split.report.n_train_events,
    }


def _train_epoch(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.runs.nextitem import fit_model, load_split, model_config
    from shopseq.runtime import TorchRuntime
    from shopseq.sequences.protocols import SplitConfig

    started, cpu = time.perf_counter(), _cpu_seconds()
    split = load_split(Path(args.store), SplitConfig(), args.threads)
    split_s = time.perf_counter() - started
    config = model_config("sasrec", SASREC, n_epochs=1, seed=0)
    fitted = fit_model(
        "sasrec", config, TorchRuntime(threads=1), split.train, split.item_vocab.size, None
    )
    return {
        "work_s": split_s + fitted.info["seconds_per_epoch"],
        "cpu_s": _cpu_seconds() - cpu,
        "split_s": split_s,
        "epoch_s": fitted.info["seconds_per_epoch"],
        "windows_per_s": fitted.info["sequences_per_s"],
        "train_events": split.report.n_train_events,
        "items": split.item_vocab.size - 1,
    }


def _engine(args: argparse.Namespace) -> Any:
    from shopseq.runs.engine import EngineConfig, SparkConfig

    if args.engine == "duckdb":
        return EngineConfig()
    return EngineConfig(
        engine="spark",
        spark=SparkConfig(master=args.spark_master, output=args.spark_output, conf=_spark_conf()),
    )


def _spark_conf() -> dict[str, str]:
    return {"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "8"}


def child(args: argparse.Namespace) -> None:
    """Run one stage in this process and print its figures as JSON."""
    stages = {
        "ingest": _ingest,
        "ingest_spark": _ingest_spark,
        "export": _export,
        "prepare": _prepare,
        "features": _features,
        "split": _split,
        "train": _train_epoch,
    }
    if args.stage == "generate":
        out = _write_log(Path(args.file), args.events)
    else:
        out = stages[args.stage](args)
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------- measuring from the parent


_TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> dict[int, tuple[int, float]]:
    """``pid -> (resident kB, CPU seconds)`` for ``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            cpu = sum(int(x) for x in fields[11:15]) / _TICK  # utime stime cutime cstime
            stats[pid] = (int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024, cpu)
        except (OSError, IndexError, ValueError):
            continue
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid]
        todo += [c for c, p in parents.items() if p == pid]
    return out


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def measure(cmd: list[str], label: str) -> dict[str, Any]:
    """Run ``cmd``, returning wall seconds, peak tree RSS (MB), load before/after, its result.

    Time the stage spent stopped from outside (the shared machine's processes were once all
    SIGSTOPped for minutes) is measured by the sampler and taken out of both times.
    """
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    paused = [0.0]  # seconds the stage was stopped from outside (SIGSTOP), not working
    done = threading.Event()

    def sample() -> None:
        last = time.perf_counter()
        while not done.wait(0.2):
            now = time.perf_counter()
            if now - last > 2.0:  # this process was stopped too: the whole tree was frozen
                paused[0] += now - last - 0.2
            elif _stopped(proc.pid):
                paused[0] += now - last
            last = now
            peak[0] = max(peak[0], sum(rss for rss, _ in _tree(proc.pid).values()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()

    seconds = time.perf_counter() - started - paused[0]
    if proc.returncode != 0:
        print(f"  {label} FAILED ({proc.returncode}):\n{stderr[-3000:]}", flush=True)
        return {
            "failed": f"exit {proc.returncode}: {_error_line(stderr)[:200]}",
            "seconds": seconds,
        }
    result: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
    if "work_s" in result:
        result["work_s"] = max(result["work_s"] - paused[0], 1e-3)
    figures = {
        "seconds": seconds,
        "paused_s": paused[0],
        "peak_mb": peak[0] / 1024,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **result,
    }
    print(
        f"  {label}: {seconds:,.1f} s, peak {figures['peak_mb']:,.0f} MB, "
        f"load {load_before:.1f} -> {figures['load_after']:.1f}",
        flush=True,
    )
    return figures


def _error_line(stderr: str) -> str:
    """The exception's own line of a traceback (DuckDB appends hint lines after it)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    return (errors or lines or ["?"])[-1]


def _stage_cmd(stage: str, **kwargs: Any) -> list[str]:
    cmd = [sys.executable, __file__, "--child", "--stage", stage]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


def run_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    """Every stage on every engine for one log size; the size's files are deleted afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    log, store, parquet = work / "events.csv", work / "shop.duckdb", work / "parquet"
    duck = {"store": store, "threads": args.threads, "memory_limit": args.memory_limit}
    spark = {
        "store": store,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "engine": "spark",
        "spark_master": args.spark_master,
        "spark_output": parquet,
    }
    rows: dict[str, dict[str, Any]] = {}
    try:
        print(f"{n:,} events", flush=True)
        rows["generate"] = measure(_stage_cmd("generate", events=n, file=log), "generate")
        rows["generate"]["file_mb"] = log.stat().st_size / 2**20
        rows["ingest/duckdb"] = measure(_stage_cmd("ingest", file=log, **duck), "ingest (duckdb)")
        if "failed" in rows["ingest/duckdb"]:
            return rows
        on_spark = "spark" in args.engines and n <= args.spark_max_events
        if on_spark:
            rows["ingest/spark"] = measure(
                _stage_cmd("ingest_spark", file=log, **spark),
                f"ingest (spark {args.spark_master})",
            )
        log.unlink()  # ingest is the only reader of the CSV
        rows["prepare/duckdb"] = measure(
            _stage_cmd("prepare", engine="duckdb", **duck), "prepare (duckdb)"
        )
        rows["features/duckdb"] = measure(
            _stage_cmd("features", engine="duckdb", **duck), "features (duckdb)"
        )
        if n <= args.train_max_events:
            rows["epoch/duckdb"] = measure(
                _stage_cmd("train", store=store, threads=args.threads), "one epoch (duckdb store)"
            )
        if on_spark and "failed" not in rows["ingest/spark"]:
            rows["prepare/spark"] = measure(
                _stage_cmd("prepare", **spark), f"prepare (spark {args.spark_master})"
            )
            rows["features/spark"] = measure(_stage_cmd("features", **spark), "features (spark)")
            rows["split/spark"] = measure(
                _stage_cmd("split", store=parquet, threads=args.threads),
                "sequences + split from Spark's Parquet output",
            )
    finally:
        rows["disk"] = {"store_mb": _size_mb(store), "parquet_mb": _size_mb(parquet)}
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    return 0.0


def fit_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) on log(events) (``None`` below two sizes)."""
    if len(sizes) < 2:
        return None
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


STAGES = [
    ("ingest/duckdb", "ingest (DuckDB; validate, quarantine, lineage)"),
    ("prepare/duckdb", "prepare (DuckDB)"),
    ("features/duckdb", "per-user features (DuckDB)"),
    ("epoch/duckdb", "one SASRec epoch: split + epoch (from the DuckDB store)"),
    ("ingest/spark", "ingest (Spark local; the same rules, Parquet out)"),
    ("export", "export events to Parquet (Spark's input, before Spark ingest existed)"),
    ("prepare/spark", "prepare (Spark local)"),
    ("features/spark", "per-user features (Spark local)"),
    ("split/spark", "sequences + time-cut split read from Spark's Parquet output"),
]


def render(
    results: dict[int, dict[str, dict[str, Any]]], args: argparse.Namespace, measured: str | None
) -> str:
    """The markdown section."""
    sizes = sorted(results)
    lines = [
        "## Scaling: 1 M -> 10 M -> 100 M events (benchmarks/scaling.py)\n",
        f"{machine_line(args.threads, measured)} DuckDB threads {args.threads}, memory limit "
        f"{args.memory_limit}; Spark `{args.spark_master}` with "
        + ", ".join(f"`{k}={v}`" for k, v in _spark_conf().items())
        + "; the epoch: SASRec "
        + json.dumps(SASREC)
        + ", 1 torch thread. Each stage is its own process; peak memory is the resident set of"
        " its process tree (Spark's JVM included). The machine is shared: the load average"
        " (1 min, 2 cores) is given with each time.\n",
        "`work s` is the stage's own work, timed inside its process (without interpreter start-up"
        " or the Spark session's start, given in the notes); `CPU s` is the CPU time of that work"
        " (all threads, plus Spark's JVM): what a core-hour buys, and far less sensitive than wall"
        " time to the other engineers' load; `process s` is the whole process.\n",
        "| stage | events | work s | events/s | CPU s | events per CPU-s | process s | peak MB "
        "| load before -> after | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for key, label in STAGES:
        for n in sizes:
            row = results[n].get(key)
            if row is None:
                continue
            if "failed" in row:
                lines.append(f"| {label} | {n:,} | failed | | | | | | | {row['failed']} |")
                continue
            notes = (
                f"Spark session {row['open_s']:.0f} s" if "spark" in key and "open_s" in row else ""
            )
            if key.startswith("epoch"):
                notes = (
                    f"split {row['split_s']:.1f} s + epoch {row['epoch_s']:.1f} s "
                    f"({row['windows_per_s']:,.0f} windows/s, {row['items']:,} items)"
                )
            if key == "ingest/duckdb":
                notes = f"CSV {results[n]['generate']['file_mb']:,.0f} MB"
            lines.append(
                f"| {label} | {n:,} | {row['work_s']:,.1f} | {n / row['work_s']:,.0f} | "
                f"{row['cpu_s']:,.1f} | {n / row['cpu_s']:,.0f} | "
                f"{row['seconds']:,.1f} | {row['peak_mb']:,.0f} | "
                f"{row['load_before']:.1f} -> {row['load_after']:.1f} | {notes} |"
            )
    lines += ["", "| stage | sizes fitted | b on work s | b on CPU s |", "|---|---|---:|---:|"]
    for key, label in STAGES:
        ran = [n for n in sizes if "work_s" in results[n].get(key, {})]
        b = fit_exponent(ran, [results[n][key]["work_s"] for n in ran])
        b_cpu = fit_exponent(ran, [results[n][key]["cpu_s"] for n in ran])
        if b is not None and b_cpu is not None:
            sizes_text = ", ".join(f"{n:,}" for n in ran)
            lines.append(f"| {label} | {sizes_text} | {b:.3f} | {b_cpu:.3f} |")
    lines += ["", "b: least-squares slope of log(time) on log(events) over the sizes that ran."]
    ingested = [n for n in sizes if "work_s" in results[n].get("ingest/duckdb", {})]
    ingest = [results[n]["ingest/duckdb"]["peak_mb"] for n in ingested]
    if len(ingest) > 1:
        lines += [
            "",
            "Ingest peak memory (whole process) from the smallest to the largest file: "
            + ", ".join(
                f"{m:,.0f} MB ({results[n]['generate']['file_mb']:,.0f} MB CSV)"
                for n, m in zip(ingested, ingest, strict=True)
            )
            + f"; largest / smallest = {ingest[-1] / ingest[0]:.2f}.",
        ]
    disk = ", ".join(
        f"{n:,}: store {results[n]['disk']['store_mb']:,.0f} MB"
        + (
            f", Parquet {results[n]['disk']['parquet_mb']:,.0f} MB"
            if results[n]["disk"]["parquet_mb"]
            else ""
        )
        for n in sizes
    )
    lines += ["", f"Disk per size (deleted afterwards): {disk}."]
    return "\n".join(lines)


def main() -> None:
    """Measure every size, write docs/BENCHMARKS.md's 'scaling' section and a JSON file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--train-max-events", type=int, default=10_000_000)
    parser.add_argument("--spark-max-events", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/shopseq-scaling"))
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/scaling.json")
    parser.add_argument("--render", type=Path, help="Only write the section from this JSON.")
    parser.add_argument("--no-write", action="store_true", help="Do not touch BENCHMARKS.md.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--spark-output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.render:
        data = json.loads(args.render.read_text())
        results = {int(k): v for k, v in data["results"].items()}
        # The section describes the run that measured it: its options and its command line
        # (whether to write the doc stays this call's choice).
        no_write = args.no_write
        measured_argv = data["argv"]
        measured = data.get("measured")  # absent in runs written before it was recorded
        args = parser.parse_args(measured_argv[1:])
        args.no_write = no_write
    else:
        measured_argv = sys.argv
        started, measured = datetime.now(UTC), None
        results = {}
        for n in sorted(args.sizes):
            free_gb = shutil.disk_usage(args.work.parent).free / 2**30
            print(f"free disk {free_gb:,.0f} GB, load {os.getloadavg()[0]:.1f}", flush=True)
            results[n] = run_size(n, args, args.work / str(n))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            measured = f"{started:%Y-%m-%d %H:%M}–{datetime.now(UTC):%H:%M} UTC"
            record = {"argv": sys.argv, "measured": measured, "results": results}
            args.json.write_text(json.dumps(record, indent=1))
    markdown = render(results, args, measured)
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section('scaling', markdown, measured_argv)}")


if __name__ == "__main__":
    main()
