"""Recommend latency of SASRec and GRU4Rec over a 100k-item catalogue, as a service meets it.

Each model is fitted for one epoch on random sequences over 100,000 items (the weights do not
change the cost) in a child process at ``nice 10`` and saved; then a fresh process loads the
saved model and times ``recommend(history, k=10)`` for one history of ``--history`` events
(wall p50 / p99 and CPU p50 of ``--calls`` calls) and for a batch of 256 histories, on
``--threads`` torch threads. Beside it, in the same process, the bare (1, d) x (d, n_items)
float32 product (against a contiguous (d, n_items) copy, its fastest layout) that every exact
answer needs is timed the same way: ``recommend / product`` is
how close the answer is to that floor. With ``--compare-src DIR`` the same timing runs
alternately on another source tree (e.g. main's ``src``) over the same saved models, so before
and after are measured side by side.

The machine is shared: load averages are recorded with every row; the CPU time of a call is the
steadier figure when other processes hold the cores. Examples::

    python benchmarks/neural_latency.py
    python benchmarks/neural_latency.py --compare-src /tmp/main/src --rounds 2 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from markdown_report import machine_line, write_section

N_ITEMS = 100_001
MODELS = {
    "sasrec": ("SASRec (d=64, 2 blocks, max_len 50)", {"loss": "sampled_ce", "n_epochs": 1}),
    "gru4rec": ("GRU4Rec (100 units)", {"n_epochs": 1}),
    "gru4rec-512": ("GRU4Rec (512 units)", {"layers": [512], "n_epochs": 1}),
}


def _model_class(key: str) -> type:
    if key.startswith("sasrec"):
        from shopseq.nextitem.sasrec import SASRec

        return SASRec
    from shopseq.nextitem.gru4rec import GRU4Rec

    return GRU4Rec


def fit(directory: Path, key: str) -> None:
    """Fit one model on random sequences and save it into ``directory``."""
    from shopseq.sequences import Sequences

    cls = _model_class(key)
    rng = np.random.default_rng(0)
    train = Sequences.from_lists([rng.integers(1, N_ITEMS, size=20) for _ in range(2000)])
    config = cls.config_class.model_validate(MODELS[key][1])
    cls(config).fit(train, N_ITEMS).save(directory)


def _times(fn: object, calls: int) -> tuple[np.ndarray, np.ndarray]:
    wall, cpu = [], []
    for _ in range(calls):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return 1000 * np.array(wall), 1000 * np.array(cpu)


def measure(directory: Path, key: str, threads: int, calls: int, history: int) -> dict[str, float]:
    """Time one saved model in this process; milliseconds."""
    import torch

    from shopseq.runtime import TorchRuntime
    from shopseq.sequences import Sequences

    load_before = os.getloadavg()[0]
    model = _model_class(key).load(directory, TorchRuntime(threads=threads))
    rng = np.random.default_rng(1)
    batch = Sequences.from_lists([rng.integers(1, N_ITEMS, size=history) for _ in range(256)])
    one = batch.subset(np.array([0]))
    net = model.net_
    table = net.item_emb.weight if key.startswith("sasrec") else net.Wy.weight  # (n, d)
    table_t = table.detach().T.contiguous()  # (d, n): the fastest layout of this product
    state = torch.randn(1, table.shape[1])
    torch.set_num_threads(threads)

    def product() -> None:
        with torch.inference_mode():
            torch.mm(state, table_t)  # (1, n_items)

    # GRU4Rec's incremental path, as the service's hidden-state cache takes it: the state after
    # the history's first events is kept; a call is the newest event's cell step, the scores
    # from that state and the same top-k (seen items excluded) that ``recommend`` ends with.
    incremental = None
    if hasattr(model, "advance"):
        from shopseq.metrics.ranking import top_k

        kept = model.advance(model.initial_state(), one.items[:-1])
        newest = one.items[-1:]
        full = model.recommend(one, 10)

        def incremental() -> None:
            top_k(model.score_state(model.advance(kept, newest)), 10, seen=one)

        step = top_k(model.score_state(model.advance(kept, newest)), 10, seen=one)
        if not (
            np.array_equal(step.items, full.items) and np.array_equal(step.scores, full.scores)
        ):
            raise AssertionError("the incremental answer differs from the full recompute")
    for _ in range(20):  # warm-up: first calls fault in memory and pick kernels
        model.recommend(one, 10)
        product()
        if incremental is not None:
            incremental()
    out: dict[str, float] = {}
    # Interleaved rounds so all of them see the same moments of the machine's load.
    rec_w, rec_c, prod_w, prod_c, inc_w, inc_c = [], [], [], [], [], []
    for _ in range(10):
        w, c = _times(lambda: model.recommend(one, 10), calls // 10)
        rec_w.append(w)
        rec_c.append(c)
        w, c = _times(product, calls // 10)
        prod_w.append(w)
        prod_c.append(c)
        if incremental is not None:
            w, c = _times(incremental, calls // 10)
            inc_w.append(w)
            inc_c.append(c)
    if incremental is not None:
        iw, ic = np.concatenate(inc_w), np.concatenate(inc_c)
        out["inc_p50"], out["inc_p99"] = float(np.median(iw)), float(np.quantile(iw, 0.99))
        out["inc_cpu_p50"], out["inc_cpu_p99"] = (
            float(np.median(ic)),
            float(np.quantile(ic, 0.99)),
        )
    rw, rc, pw, pc = (np.concatenate(x) for x in (rec_w, rec_c, prod_w, prod_c))
    out["p50"], out["p99"], out["cpu_p50"] = (
        float(np.median(rw)),
        float(np.quantile(rw, 0.99)),
        float(np.median(rc)),
    )
    out["cpu_p99"] = float(np.quantile(rc, 0.99))
    out["product_p50"], out["product_cpu_p50"] = float(np.median(pw)), float(np.median(pc))
    model.recommend(batch, 10)
    bw, bc = _times(lambda: model.recommend(batch, 10), 3)
    out["batch_ms_per_history"] = float(np.median(bw)) / len(batch)
    out["batch_cpu_ms_per_history"] = float(np.median(bc)) / len(batch)
    out["load_before"], out["load_after"] = load_before, os.getloadavg()[0]
    return out


def _child(args: list[str], src: Path | None = None, nice: int = 0) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = ["nice", "-n", str(nice)] if nice else []
    cmd += [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure and write the 'neural_latency' section of docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--history", type=int, default=30, help="events per history")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--compare-src", type=Path, help="also time this source tree (before)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per tree")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.fit:
            fit(args.dir, args.key)
            print("{}")
        else:
            print(json.dumps(measure(args.dir, args.key, args.threads, args.calls, args.history)))
        return

    env_note = ", ".join(
        f"{k}={os.environ[k]}"
        for k in ("OPENBLAS_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
        if k in os.environ
    )
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.compare_src is not None:
        trees.append((f"`{args.compare_src}`", args.compare_src.resolve()))
    rows = [
        "| model | code | one history p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | product p50 ms "
        "(CPU) | recommend / product | batch of 256, ms per history (CPU) | load 1-min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="shopseq-latency-") as tmp:
        for key in args.models:
            directory = Path(tmp) / key
            # Fitting is the heavy part: a niced child, so timing runs beside a quiet fit.
            _child(["--fit", "--dir", str(directory), "--key", key], nice=10)
            for _ in range(args.rounds):
                for label, src in trees:
                    r = _child(
                        [
                            "--dir",
                            str(directory),
                            "--key",
                            key,
                            "--threads",
                            str(args.threads),
                            "--calls",
                            str(args.calls),
                            "--history",
                            str(args.history),
                        ],
                        src=src,
                    )
                    row = (
                        f"| {MODELS[key][0]} | {label} | {r['p50']:.2f} | {r['p99']:.2f} | "
                        f"{r['cpu_p50']:.2f} | {r['cpu_p99']:.2f} | {r['product_p50']:.2f} "
                        f"({r['product_cpu_p50']:.2f}) | {r['p50'] / r['product_p50']:.2f}x | "
                        f"{r['batch_ms_per_history']:.3f} ({r['batch_cpu_ms_per_history']:.3f}) "
                        f"| {r['load_before']:.1f} -> {r['load_after']:.1f} |"
                    )
                    rows.append(row)
                    print(row, flush=True)
                    if "inc_p50" in r:
                        row = (
                            f"| {MODELS[key][0]} | {label}, incremental (1 new event) | "
                            f"{r['inc_p50']:.2f} | {r['inc_p99']:.2f} | {r['inc_cpu_p50']:.2f} | "
                            f"{r['inc_cpu_p99']:.2f} | {r['product_p50']:.2f} "
                            f"({r['product_cpu_p50']:.2f}) | "
                            f"{r['inc_p50'] / r['product_p50']:.2f}x | - | "
                            f"{r['load_before']:.1f} -> {r['load_after']:.1f} |"
                        )
                        rows.append(row)
                        print(row, flush=True)
    text = "\n".join(
        [
            "## Neural recommend latency\n",
            f"{machine_line(args.threads)} Catalogue {N_ITEMS - 1:,} items, one history of "
            f"{args.history} events, `recommend(k=10)`, {args.calls} calls per row, each model "
            "loaded from its saved directory in a fresh process (fitted beforehand in a `nice 10` "
            f"child){'; ' + env_note if env_note else ''}. `product` is the bare (1, d) x "
            "(d, n_items) float32 product every exact answer needs, against a contiguous (d, "
            "n_items) copy (timed interleaved with the "
            "calls); CPU is the process's CPU time per call. `incremental (1 new event)` "
            "(GRU4Rec) is the path of the service's hidden-state cache, timed interleaved in "
            "the same process: the GRU state after the first events is kept, a call is the "
            "newest event's one cell step, the scores from that state and the same top-k "
            "(checked equal to `recommend`'s answer before timing). "
            "Goal: p50 < 5 ms, p99 < 10 ms.\n",
            *rows,
        ]
    )
    if args.no_write:
        print(text)
    else:
        print(f"wrote {write_section('neural_latency', text)}")


if __name__ == "__main__":
    main()
