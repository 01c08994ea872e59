"""Prepare against one hand-written DuckDB query doing the same steps, side by side.

A generated log (``--events``, 1 % exact duplicates) is ingested once; then, alternately for
``--rounds`` rounds, each on a fresh copy of that store:

* ``shopseq prepare`` as a user meets it (a fresh ``python -m shopseq prepare`` process, timed
  from start to exit), and ``prepare_events`` alone inside a process (start-up excluded);
* the hand-written query: one ``CREATE TABLE ... AS`` doing the same exact dedupe, missing-value
  fills (modal category and median price per item, quantity 1 on carts and purchases),
  30-minute sessions and the sorted write, run by a fresh Python process with only DuckDB
  imported, and alone inside a process;
* optionally the same two timings of another source tree (``--compare-src``, e.g. main's).

Wall seconds and CPU seconds (every thread of the process) are recorded; the ratio to the
hand-written query is taken within the same round. The hand-written result is checked to equal
``events_prepared`` row for row. Examples::

    python benchmarks/prepare.py --events 2000000 --rounds 2
    python benchmarks/prepare.py --events 2000000 --compare-src /tmp/main/src --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent

#: The reference: what prepare does with its default settings, written by hand as one query.
HAND_SQL = """
CREATE OR REPLACE TABLE events_hand AS
WITH deduped AS (
    SELECT user_id, item_id, action, ts, session_id, category_id, price, quantity, query,
           min(CAST(source_file_id AS BIGINT) * 1099511627776 + source_row) AS first
    FROM events
    GROUP BY ALL
),
modal AS (
    SELECT item_id, category_id
    FROM (
        SELECT item_id, category_id, count(*) AS n FROM deduped
        WHERE category_id IS NOT NULL GROUP BY ALL
    )
    QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY n DESC, category_id) = 1
),
medians AS (
    SELECT item_id, quantile_cont(price, 0.5) AS price
    FROM deduped WHERE price IS NOT NULL GROUP BY item_id
),
filled AS (
    SELECT d.user_id, d.item_id, d.action, d.ts, d.session_id,
           coalesce(d.category_id, m.category_id) AS category_id,
           coalesce(d.price, p.price) AS price,
           CASE WHEN d.action IN ('cart', 'purchase') AND d.quantity IS NULL THEN 1
                ELSE d.quantity END AS quantity,
           d.query,
           CAST(d.first // 1099511627776 AS INTEGER) AS source_file_id,
           d.first % 1099511627776 AS source_row
    FROM deduped d
    LEFT JOIN modal m ON d.item_id = m.item_id
    LEFT JOIN medians p ON d.item_id = p.item_id
),
starts AS (
    SELECT *,
           CASE WHEN lag(ts) OVER w IS NULL OR ts > lag(ts) OVER w + INTERVAL 1800 SECOND
                THEN 1 ELSE 0 END AS start
    FROM filled
    WINDOW w AS (PARTITION BY user_id ORDER BY ts, source_file_id, source_row)
)
SELECT user_id, item_id, action, ts,
       user_id || '#' || CAST(sum(start) OVER (
           PARTITION BY user_id ORDER BY ts, source_file_id, source_row
           ROWS UNBOUNDED PRECEDING) AS VARCHAR) AS session_id,
       category_id, price, quantity, query, source_file_id, source_row
FROM starts
ORDER BY user_id, ts, source_file_id, source_row
"""

#: What a user would run for the hand-written query: a process that imports only DuckDB.
_HAND_PROCESS = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "con.execute(\"SET TimeZone = 'UTC'\")\n"
    "if sys.argv[3] != '-': con.execute(f'SET threads TO {int(sys.argv[3])}')\n"
    "if sys.argv[4] != '-': con.execute(f\"SET memory_limit = '{sys.argv[4]}'\")\n"
    "con.execute(open(sys.argv[2]).read())\n"
    "con.close()\n"
)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phase(args: argparse.Namespace) -> dict[str, float]:
    """Run one phase in this process and return its figures (seconds)."""
    out: dict[str, float] = {}
    threads = None if args.threads is None else int(args.threads)
    if args.phase == "setup":
        from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
        from shopseq.store import open_store
        from shopseq.synthetic import GeneratorConfig, generate_events, write_events

        config = GeneratorConfig(n_events=args.events, seed=7, duplicate_fraction=0.01)
        csv = Path(args.store).with_suffix(".csv")
        write_events(generate_events(config), csv, config)
        with open_store(Path(args.store), threads=threads) as store:
            report = ingest_files([csv], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        out["rows"] = report.rows_accepted
        csv.unlink()
    elif args.phase == "prepare":
        from shopseq.prepare import PrepareConfig, prepare_events
        from shopseq.store import open_store

        with open_store(Path(args.store), threads=threads, memory_limit=args.memory_limit) as s:
            wall, cpu = time.perf_counter(), _cpu_self()
            report = prepare_events(s, PrepareConfig())
            out["wall"], out["cpu"] = time.perf_counter() - wall, _cpu_self() - cpu
        out["sessions"], out["rows"] = report.sessions, report.rows_out
    elif args.phase == "hand":
        import duckdb

        con = duckdb.connect(args.store)
        con.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            con.execute(f"SET threads TO {threads}")
        if args.memory_limit is not None:
            con.execute(f"SET memory_limit = '{args.memory_limit}'")
        wall, cpu = time.perf_counter(), _cpu_self()
        con.execute(HAND_SQL)
        out["wall"], out["cpu"] = time.perf_counter() - wall, _cpu_self() - cpu
        con.close()
    return out


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src or ROOT / "src")
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd`` as a fresh process: wall and CPU seconds (all its threads), stdout."""
    wall, cpu = time.perf_counter(), _cpu_children()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - wall, _cpu_children() - cpu, done.stdout


def _child(args: argparse.Namespace, src: Path | None, **kwargs: object) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child"]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.memory_limit is not None:
        cmd += ["--memory-limit", args.memory_limit]
    _, _, stdout = _timed(cmd, _env(src))
    result: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _same_rows(prepared: Path, hand: Path) -> tuple[bool, int, int]:
    import duckdb

    con = duckdb.connect(str(prepared))
    con.execute(f"ATTACH '{hand}' AS hand (READ_ONLY)")
    diff = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT * FROM events_prepared EXCEPT ALL "
        "SELECT * FROM hand.events_hand)) + (SELECT count(*) FROM (SELECT * FROM "
        "hand.events_hand EXCEPT ALL SELECT * FROM events_prepared))"
    ).fetchone()
    rows, sessions = con.execute(
        "SELECT count(*), count(DISTINCT session_id) FROM hand.events_hand"
    ).fetchone()  # type: ignore[misc]
    con.close()
    return diff is not None and diff[0] == 0, int(rows), int(sessions)


def main() -> None:
    """Measure and write the 'prepare' section of docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: every core)")
    parser.add_argument("--memory-limit", help="DuckDB memory limit (default: DuckDB's)")
    parser.add_argument("--compare-src", type=Path, help="also time this source tree")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(phase(args)))
        return

    trees: list[tuple[str, Path | None]] = [("shopseq prepare", None)]
    if args.compare_src is not None:
        trees.append((f"shopseq prepare, `{args.compare_src}`", args.compare_src.resolve()))
    flags = []
    if args.threads is not None:
        flags += ["--threads", str(args.threads)]
    if args.memory_limit is not None:
        flags += ["--memory-limit", args.memory_limit]
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shopseq-prepare-") as tmp:
        work = Path(tmp)
        base, sql = work / "base.duckdb", work / "hand.sql"
        sql.write_text(HAND_SQL)
        n = int(_child(args, None, phase="setup", events=args.events, store=base)["rows"])
        check = ""
        for round_no in range(1, args.rounds + 1):
            results: list[tuple[str, float, float, float, float, str]] = []
            variants: list[tuple[str, Path | None]] = [*trees, ("hand-written query", None)]
            for label, src in variants:
                load = os.getloadavg()[0]
                fresh, inproc = work / "fresh.duckdb", work / "inproc.duckdb"
                shutil.copy(base, fresh)
                shutil.copy(base, inproc)
                if label == "hand-written query":
                    threads, limit = str(args.threads or "-"), args.memory_limit or "-"
                    cmd = [sys.executable, "-c", _HAND_PROCESS, str(fresh), str(sql), threads]
                    wall, cpu, _ = _timed([*cmd, limit], _env(None))
                    inside = _child(args, None, phase="hand", store=inproc)
                else:
                    cmd = [sys.executable, "-m", "shopseq", "prepare", "--store", str(fresh)]
                    wall, cpu, _ = _timed([*cmd, *flags], _env(src))
                    inside = _child(args, src, phase="prepare", store=inproc)
                if round_no == 1 and label == "shopseq prepare":
                    shutil.copy(fresh, work / "prepared.duckdb")
                if round_no == 1 and label == "hand-written query":
                    same, n_rows, n_sessions = _same_rows(work / "prepared.duckdb", fresh)
                    check = (
                        f"The hand-written query's table equals `events_prepared` row for row: "
                        f"**{'yes' if same else 'NO'}** ({n_rows:,} events, "
                        f"{n_sessions:,} sessions).\n"
                    )
                results.append((label, wall, cpu, inside["wall"], inside["cpu"], f"{load:.1f}"))
                fresh.unlink()
                inproc.unlink()
            hand = results[-1]
            for label, wall, cpu, in_wall, in_cpu, load in results:
                row = (
                    f"| {round_no} | {label} | {wall:.1f} | {cpu:.1f} | {wall / hand[1]:.2f}x | "
                    f"{in_wall:.1f} | {in_cpu:.1f} | {in_wall / hand[3]:.2f}x | {load} |"
                )
                rows.append(row)
                print(row, flush=True)
    text = "\n".join(
        [
            "## Prepare against hand-written SQL\n",
            f"{machine_line()} {n:,} ingested events (generated, 1 % exact duplicates), default "
            f"`PrepareConfig`; DuckDB threads {args.threads or 'default (every core)'}, memory "
            f"limit {args.memory_limit or 'default'}. Each cell is one run on a fresh copy of the "
            "store; the ratio is to the hand-written query of the same round. `fresh process` "
            "is the command as a user meets it (start-up included); `in process` times the call "
            "alone. CPU counts every thread.\n",
            check,
            "| round | what | fresh process s | CPU s | ratio | in process s | CPU s | ratio "
            "| load 1-min |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
            *rows,
        ]
    )
    if args.no_write:
        print(text)
    else:
        print(f"wrote {write_section('prepare', text)}")


if __name__ == "__main__":
    main()
