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
own seed. Spark starts from the ingested events exported as Parquet (``shopseq export``): ingest
on Spark waits for the ingest rewrite (issue 9). Every generated file is deleted after its size.

    nice python benchmarks/scaling.py --sizes 1000000 10000000 100000000
    nice python benchmarks/scaling.py --sizes 200000 1000000 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
SHOPSEQ = str(Path(sys.executable).with_name("shopseq"))
SHARD = 10_000_000
DAYS = 120

# The epoch: SASRec with sampled softmax (full softmax over a 1 M-item catalogue does not fit).
SASREC = {"n_epochs": 1, "loss": "sampled_ce", "n_negatives": 1024, "hidden_size": 64}


# ---------------------------------------------------------------- stages run in child processes


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


def _features(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.prepare import PREPARED_TABLE
    from shopseq.runs.engine import open_engine_store
    from shopseq.sequences import user_features

    engine = _engine(args)
    with open_engine_store(engine, Path(args.store), threads=args.threads) as store:
        events = store.table(PREPARED_TABLE)
        as_of = events.ts.max().execute()
        table = store.materialize("user_features", user_features(events, as_of))
        return {"rows": int(table.count().execute())}


def _train_epoch(args: argparse.Namespace) -> dict[str, Any]:
    from shopseq.runs.nextitem import fit_model, load_split, model_config
    from shopseq.runtime import TorchRuntime
    from shopseq.sequences.protocols import SplitConfig

    started = time.perf_counter()
    split = load_split(Path(args.store), SplitConfig(), args.threads)
    split_s = time.perf_counter() - started
    config = model_config("sasrec", SASREC, n_epochs=1, seed=0)
    fitted = fit_model(
        "sasrec", config, TorchRuntime(threads=1), split.train, split.item_vocab.size, None
    )
    return {
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
    return {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"}


def child(args: argparse.Namespace) -> None:
    """Run one stage in this process and print its figures as JSON."""
    if args.stage == "generate":
        out = _write_log(Path(args.file), args.events)
    elif args.stage == "features":
        out = _features(args)
    elif args.stage == "train":
        out = _train_epoch(args)
    else:
        raise SystemExit(f"unknown stage {args.stage}")
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------- measuring from the parent


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and every descendant (kB), read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [c for c, p in parents.items() if p == pid]
    return total


def measure(cmd: list[str], label: str) -> dict[str, Any]:
    """Run ``cmd``, returning wall seconds, peak tree RSS (MB), load before/after, its result."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{stderr[-4000:]}")
    result: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
    figures = {
        "seconds": seconds,
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


def _stage_cmd(stage: str, **kwargs: Any) -> list[str]:
    cmd = [sys.executable, __file__, "--child", "--stage", stage]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


def run_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    """Every stage on every engine for one log size; the size's files are deleted afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    log, store, parquet = work / "events.csv", work / "shop.duckdb", work / "parquet"
    threads = str(args.threads)
    rows: dict[str, dict[str, Any]] = {}
    try:
        print(f"{n:,} events", flush=True)
        rows["generate"] = measure(_stage_cmd("generate", events=n, file=log), "generate")
        rows["generate"]["file_mb"] = log.stat().st_size / 2**20
        rows["ingest/duckdb"] = measure(
            [
                SHOPSEQ,
                "ingest",
                str(log),
                "--store",
                str(store),
                "--threads",
                threads,
                "--memory-limit",
                args.memory_limit,
            ],
            "ingest (duckdb)",
        )
        log.unlink()  # ingest is the only reader of the CSV
        rows["prepare/duckdb"] = measure(
            [
                SHOPSEQ,
                "prepare",
                "--store",
                str(store),
                "--threads",
                threads,
                "--memory-limit",
                args.memory_limit,
            ],
            "prepare (duckdb)",
        )
        rows["features/duckdb"] = measure(
            _stage_cmd("features", store=store, engine="duckdb", threads=threads),
            "features (duckdb)",
        )
        if n <= args.train_max_events:
            rows["epoch/duckdb"] = measure(
                _stage_cmd("train", store=store, threads=threads), "one epoch (duckdb store)"
            )
        if "spark" in args.engines and n <= args.spark_max_events:
            rows["export"] = measure(
                [SHOPSEQ, "export", "events", "--to", str(parquet), "--store", str(store)],
                "export events to Parquet",
            )
            spark = [
                "--engine",
                "spark",
                "--spark-master",
                args.spark_master,
                "--spark-output",
                str(parquet),
            ]
            for key, value in _spark_conf().items():
                spark += ["--spark-conf", f"{key}={value}"]
            rows["prepare/spark"] = measure(
                [SHOPSEQ, "prepare", *spark], f"prepare (spark {args.spark_master})"
            )
            rows["features/spark"] = measure(
                _stage_cmd(
                    "features",
                    store=store,
                    engine="spark",
                    threads=threads,
                    spark_master=args.spark_master,
                    spark_output=parquet,
                ),
                "features (spark)",
            )
            if n <= args.train_max_events:
                rows["epoch/spark"] = measure(
                    _stage_cmd("train", store=parquet, threads=threads),
                    "one epoch (Spark's Parquet output)",
                )
        rows["disk"] = {"store_mb": _size_mb(store), "parquet_mb": _size_mb(parquet)}
    finally:
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
    ("export", "export events to Parquet (Spark's input)"),
    ("prepare/spark", "prepare (Spark local)"),
    ("features/spark", "per-user features (Spark local)"),
    ("epoch/spark", "one SASRec epoch (from Spark's Parquet output)"),
]


def render(results: dict[int, dict[str, dict[str, Any]]], args: argparse.Namespace) -> str:
    """The markdown section."""
    sizes = sorted(results)
    lines = [
        "## Scaling: 1 M -> 10 M -> 100 M events (benchmarks/scaling.py)\n",
        f"{machine_line(args.threads)} DuckDB threads {args.threads}, memory limit "
        f"{args.memory_limit}; Spark `{args.spark_master}` with "
        + ", ".join(f"`{k}={v}`" for k, v in _spark_conf().items())
        + "; the epoch: SASRec "
        + json.dumps(SASREC)
        + ", 1 torch thread. Each stage is its own process; peak memory is the resident set of"
        " its process tree (Spark's JVM included). The machine is shared: the load average"
        " (1 min, 2 cores) is given with each time.\n",
        "| stage | events | seconds | events/s | peak MB | load before -> after | notes |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key, label in STAGES:
        for n in sizes:
            row = results[n].get(key)
            if row is None:
                continue
            notes = ""
            if key.startswith("epoch"):
                notes = (
                    f"split {row['split_s']:.1f} s + epoch {row['epoch_s']:.1f} s "
                    f"({row['windows_per_s']:,.0f} windows/s, {row['items']:,} items)"
                )
            if key == "ingest/duckdb":
                notes = f"CSV {results[n]['generate']['file_mb']:,.0f} MB"
            lines.append(
                f"| {label} | {n:,} | {row['seconds']:,.1f} | {n / row['seconds']:,.0f} | "
                f"{row['peak_mb']:,.0f} | {row['load_before']:.1f} -> {row['load_after']:.1f} |"
                f" {notes} |"
            )
    lines += [
        "",
        "| stage | sizes fitted | growth exponent b (time ~ events^b) |",
        "|---|---|---:|",
    ]
    for key, label in STAGES:
        ran = [n for n in sizes if key in results[n]]
        b = fit_exponent(ran, [results[n][key]["seconds"] for n in ran])
        if b is not None:
            lines.append(f"| {label} | {', '.join(f'{n:,}' for n in ran)} | {b:.3f} |")
    ingest = [
        results[n]["ingest/duckdb"]["peak_mb"] for n in sizes if "ingest/duckdb" in results[n]
    ]
    if len(ingest) > 1:
        lines += [
            "",
            f"Ingest peak memory from the smallest to the largest file: "
            f"{', '.join(f'{m:,.0f}' for m in ingest)} MB "
            f"(largest / smallest = {ingest[-1] / ingest[0]:.2f}).",
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
    else:
        results = {}
        for n in sorted(args.sizes):
            free_gb = shutil.disk_usage(args.work.parent).free / 2**30
            print(f"free disk {free_gb:,.0f} GB, load {os.getloadavg()[0]:.1f}", flush=True)
            results[n] = run_size(n, args, args.work / str(n))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"argv": sys.argv, "results": results}, indent=1))
    markdown = render(results, args)
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section('scaling', markdown)}")


if __name__ == "__main__":
    main()
