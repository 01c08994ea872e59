"""Exact vs approximate (FAISS IVF or HNSW) top-10 over a 1 M-item catalogue: recall@10 and speed.

The item vectors are synthetic but shaped like trained ones (no 1 M-item trained model exists
here): ``--clusters`` Gaussian centres, each item its centre plus noise, a per-item bias, and the
queries (final states) drawn the same way; iid Gaussian vectors, the hardest case for any graph
index, are measured with ``--clusters 0``. Exact is the scorer's own path (``ItemMatrix`` product
into a preallocated row + the one ``top_k``); approximate is ``ApproximateTopK.search``. Both are
timed per query, interleaved, in one process on ``--threads`` threads; recall@10 is the share of
the exact top 10 that the index returns. Build time is reported apart. Example::

    nice -n 10 python benchmarks/topk.py --items 1000000 --kind ivf --ef 8 16 32
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from markdown_report import machine_line, write_section

from shopseq.metrics.ranking import top_k
from shopseq.nextitem.approximate import ApproximateTopK, IndexConfig
from shopseq.nextitem.neural import ItemMatrix


def _vectors(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray | None) -> np.ndarray:
    if centres is None:
        return rng.normal(size=(n, dim)).astype(np.float32)
    pick = rng.integers(0, len(centres), size=n)
    noise = rng.normal(scale=0.5, size=(n, dim)).astype(np.float32)
    return (centres[pick] + noise).astype(np.float32)


def main() -> None:
    """Build the index, time both paths, write the section (unless --no-write)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kind", choices=["hnsw", "ivf"], default="ivf")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument(
        "--ef", type=int, nargs="+", default=[8, 16, 32], help="ef_search (hnsw) / nprobe (ivf)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = (
        rng.normal(size=(args.clusters, args.dim)).astype(np.float32) if args.clusters else None
    )
    weight = _vectors(rng, args.items + 1, args.dim, centres)  # row 0: padding
    bias = rng.normal(scale=0.5, size=args.items + 1).astype(np.float32)
    states = _vectors(rng, args.queries, args.dim, centres)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    config = IndexConfig(
        kind=args.kind,
        m=args.m,
        ef_construction=args.ef_construction,
        nlist=args.nlist,
        threads=args.threads,
    )
    index = ApproximateTopK(weight, bias, config)
    build_s = time.perf_counter() - started
    load_built = os.getloadavg()[0]
    items = ItemMatrix(torch.from_numpy(weight), torch.from_numpy(bias))
    out = np.empty((1, args.items + 1), np.float32)
    state_t = torch.from_numpy(states)

    def exact(q: int) -> np.ndarray:
        with torch.inference_mode():
            items.scores_into(out, state_t[q : q + 1])
        out[:, 0] = -np.inf
        best: np.ndarray = top_k(out, 10).items[0]
        return best

    truth = [exact(q) for q in range(args.queries)]
    rows = [
        "| search | ef / nprobe | recall@10 | p50 ms | p99 ms | CPU p50 ms "
        "| speed vs exact (CPU p50) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    timings: dict[str, tuple[list[float], list[float]]] = {"exact": ([], [])}
    recalls: dict[int, list[float]] = {}
    for ef in args.ef:
        timings[f"ef{ef}"] = ([], [])
        recalls[ef] = []
    for q in range(args.queries):  # interleaved: every path sees the same moments of load
        w, c = time.perf_counter(), time.process_time()
        exact(q)
        timings["exact"][1].append(time.process_time() - c)
        timings["exact"][0].append(time.perf_counter() - w)
        for ef in args.ef:
            w, c = time.perf_counter(), time.process_time()
            got = index.search(states[q : q + 1], 10, ef=ef).items[0]
            timings[f"ef{ef}"][1].append(time.process_time() - c)
            timings[f"ef{ef}"][0].append(time.perf_counter() - w)
            recalls[ef].append(len(set(got.tolist()) & set(truth[q].tolist())) / 10)
    exact_cpu = float(np.median(timings["exact"][1]))
    for name, (wall, cpu) in timings.items():
        wall_ms, cpu_ms = 1000 * np.array(wall), 1000 * np.array(cpu)
        ef_text = name[2:] if name != "exact" else "-"
        recall = "1.000" if name == "exact" else f"{np.mean(recalls[int(name[2:])]):.3f}"
        rows.append(
            f"| {'exact (product + top_k)' if name == 'exact' else args.kind.upper()} "
            f"| {ef_text} | {recall} "
            f"| {np.median(wall_ms):.3f} | {np.quantile(wall_ms, 0.99):.3f} | "
            f"{np.median(cpu_ms):.3f} | {exact_cpu / np.median(cpu) if cpu else 0:.1f}x |"
        )
        print(rows[-1], flush=True)
    index_text = (
        f"HNSW M={args.m}, efConstruction={args.ef_construction}"
        if args.kind == "hnsw"
        else f"IVF-Flat nlist={args.nlist}"
    )
    vectors = "iid Gaussian" if not args.clusters else f"{args.clusters} Gaussian clusters"
    text = "\n".join(
        [
            "### Approximate top-k over 1 M items (benchmarks/topk.py)\n",
            f"{machine_line(args.threads)} {args.items:,} items x {args.dim} dims + bias "
            f"({vectors}, synthetic), {args.queries} queries, k=10, FAISS {index_text}: "
            f"built in {build_s:.0f} s (load "
            f"{load_before:.1f} -> {load_built:.1f}); timed at load "
            f"{os.getloadavg()[0]:.1f}. Goal: recall@10 >= 0.98 at >= 5x exact.\n",
            *rows,
        ]
    )
    if args.no_write:
        print(text)
    else:
        print(f"wrote {write_section('neural_latency_topk', text)}")


if __name__ == "__main__":
    main()
