"""Two-process data-parallel training (torchrun, gloo on CPU) beside one process: same metric?

Issue 16's goal: "two-process DDP training reaches the single-process validation metric within
its bootstrap interval". The script builds one store (a generated log, or ``--store``), trains
the same model with the same flags twice with ``shopseq train`` -- once as one process, once
under ``torchrun --standalone --nproc-per-node 2`` -- then ranks the split's validation cases
with both saved models over the full catalogue (the metric that picked their best epoch) and
reports each run's test leaderboard row as written at training. The verdict: the two-process
NDCG@10 inside the one-process 95 % bootstrap interval, with a paired test of the difference.

Each training process uses ``--threads`` torch threads, so two processes use twice the cores:
the wall times are reported, but the claim is about the metric, which the machine's load does
not change.

Example (writes benchmarks/results/ddp.json and the docs/BENCHMARKS.md section)::

    nice -n 10 .venv/bin/python benchmarks/ddp.py --workdir /tmp/ddp-bench --model sasrec
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from markdown_report import machine_line, write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ddp.json"
METRIC = "NDCG@10"


def build_store(workdir: Path, n_events: int, seed: int) -> Path:
    """A generated log, ingested and prepared (cached in ``workdir``)."""
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events

    store = workdir / "shop.duckdb"
    if not store.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        config = GeneratorConfig(n_events=n_events, seed=seed)
        log = workdir / "events.csv.zst"
        write_events(generate_events(config), log, config)
        with open_store(store, threads=2) as opened:
            ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), opened)
            prepare_events(opened, PrepareConfig())
    return store


def process_params(args: argparse.Namespace, processes: int) -> str:
    """The ``--params`` of a run: with ``--same-global-batch``, the batch split over processes.

    Each process steps on its own batch and the gradients are averaged, so N processes with the
    one-process batch size take N times fewer, N times larger steps per epoch; the batch per
    process is divided by N so that both runs take the same steps (the ``n`` epochs of one
    process cover the same sequences as theirs).
    """
    params = json.loads(args.params)
    if args.same_global_batch and processes > 1:
        from shopseq.runs.nextitem import model_config

        batch = model_config(args.model, params, n_epochs=None, seed=args.seed).batch_size
        if batch % processes:
            raise SystemExit(f"batch_size {batch} does not split over {processes} processes")
        params["batch_size"] = batch // processes
    return json.dumps(params, sort_keys=True)


def train(store: Path, out: Path, args: argparse.Namespace, processes: int) -> dict[str, Any]:
    """``shopseq train`` as one process or under torchrun; its wall time and metrics.json.

    A finished run of the same command in ``out`` is reused (``command.json`` beside it).
    """
    shopseq = Path(os.path.abspath(sys.executable)).with_name("shopseq")  # no ".." in it
    params = process_params(args, processes)
    flags = [
        *("train", "--model", args.model, "--store", str(store), "--out", str(out)),
        *("--params", params, "--seed", str(args.seed), "--threads", str(args.threads)),
    ]
    if args.epochs is not None:
        flags += ["--epochs", str(args.epochs)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = (
        [str(shopseq), *flags]
        if processes == 1
        else [*launcher, "--nproc-per-node", str(processes), str(shopseq), *flags]
    )
    record = out.with_name(out.name + ".command.json")
    if (out / "metrics.json").is_file() and record.is_file():
        done_before = json.loads(record.read_text())
        if done_before["command"] == command:
            print(f"reusing {out} (same command)", flush=True)
            return {**done_before["result"], "params": params}
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result = {
        "seconds": seconds,
        "load_after": os.getloadavg()[0],
        "metrics": json.loads((out / "metrics.json").read_text()),
    }
    record.write_text(json.dumps({"command": command, "result": result}))
    return {**result, "params": params}


def rank_validation(store: Path, runs: dict[str, Path]) -> dict[str, Any]:
    """Rank the split's validation cases with each run's model (the split the runs used)."""
    from shopseq.metrics.ranking import per_case_metric
    from shopseq.metrics.stats import paired_test
    from shopseq.nextitem.evaluation import RankingConfig, rank_cases
    from shopseq.runs.nextitem import NextItemRun, item_counts, load_split
    from shopseq.runtime import TorchRuntime
    from shopseq.sequences.protocols import SplitConfig

    loaded = {name: NextItemRun.load(path, TorchRuntime(threads=1)) for name, path in runs.items()}
    first = next(iter(loaded.values()))
    split = load_split(store, SplitConfig(**first.config["split"]), threads=2)
    ranking = RankingConfig(**first.config["ranking"])
    counts = item_counts(split)
    results = {
        name: rank_cases(run.model, split.valid, split.item_vocab.size, ranking, counts)
        for name, run in loaded.items()
    }
    per_case = {name: per_case_metric(result.ranks, METRIC) for name, result in results.items()}
    one, two = per_case["1 process"], per_case["2 processes"]
    test = paired_test(two, one, seed=0)
    return {
        "n_cases": len(split.valid),
        "rows": {
            name: {"metric": result.metrics[METRIC], "ci": list(result.ci[METRIC])}
            for name, result in results.items()
        },
        "difference": float(two.mean() - one.mean()),
        "difference_ci": [float(test.ci_low), float(test.ci_high)],
        "p_value": float(test.p_value),
    }


def write_doc(results: dict[str, Any]) -> None:
    """Replace the ``ddp`` section of docs/BENCHMARKS.md."""
    valid = results["validation"]
    one = valid["rows"]["1 process"]
    two = valid["rows"]["2 processes"]
    inside = one["ci"][0] <= two["metric"] <= one["ci"][1]
    lines = [
        "## Data-parallel training (torchrun, 2 CPU processes) vs one process",
        "",
        f"`shopseq train --model {results['model']}` on {results['data']}, threads "
        f"{results['threads']} per process, seed {results['seed']}, at most {results['epochs']} "
        "epochs; once as one process and once under `torchrun --standalone --nproc-per-node 2` "
        "(gloo)"
        + (
            ", with the batch per process halved so both take the same steps per epoch"
            if results["same_global_batch"]
            else ", with the same batch per process (twice the batch, half the steps)"
        )
        + ". Both rank the split's "
        f"{valid['n_cases']:,} validation cases over the full catalogue with their saved model "
        f"(the best epoch by validation). Load average at the start: {results['load']}.",
        "",
        f"| run | --params | epochs (best) | wall s | validation {METRIC} [95 % CI] | "
        f"test {METRIC} [95 % CI] (its run's leaderboard) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("1 process", "2 processes"):
        row = valid["rows"][name]
        trained = results["runs"][name]
        training = trained["metrics"]["training"]
        entry = next(e for e in trained["metrics"]["rows"] if e["model"] == results["model"])
        lines.append(
            f"| {name} | `{trained['params']}` | {training.get('epochs')} "
            f"({training.get('best_epoch')}) | "
            f"{trained['seconds']:.0f} | {row['metric']:.4f} [{row['ci'][0]:.4f}, "
            f"{row['ci'][1]:.4f}] | {entry['metrics'][METRIC]:.4f} "
            f"[{entry['ci_low'][METRIC]:.4f}, {entry['ci_high'][METRIC]:.4f}] |"
        )
    lines += [
        "",
        f"Two processes minus one on validation {METRIC}: {valid['difference']:+.4f} "
        f"[{valid['difference_ci'][0]:+.4f}, {valid['difference_ci'][1]:+.4f}], paired "
        f"permutation p = {valid['p_value']:.3f}.",
        "",
        f"Goal (issue 16), two-process validation {METRIC} inside the one-process 95 % interval: "
        f"**{'met' if inside else 'not met'}**.",
        "",
        machine_line(threads=results["threads"]),
    ]
    write_section("ddp", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shopseq-ddp-bench"))
    parser.add_argument("--store", type=Path, help="A prepared store (default: generate one).")
    parser.add_argument("--events", type=int, default=300_000, help="Generated events.")
    parser.add_argument("--model", default="sasrec", choices=["sasrec", "gru4rec"])
    parser.add_argument("--params", default="{}", help="Model config as JSON.")
    parser.add_argument("--epochs", type=int, default=None, help="Maximum epochs.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per process.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds per training.")
    parser.add_argument(
        "--same-global-batch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Divide the batch size by the number of processes (the same steps per epoch).",
    )
    parser.add_argument("--no-doc", action="store_true", help="Do not rewrite docs/BENCHMARKS.md.")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    store = args.store or build_store(args.workdir, args.events, args.seed)
    data = str(args.store) if args.store else f"a generated log of {args.events:,} events"
    runs: dict[str, Any] = {}
    paths = {}
    for name, processes in (("1 process", 1), ("2 processes", 2)):
        out = args.workdir / f"run-{processes}"
        runs[name] = train(store, out, args, processes)
        paths[name] = out
        print(f"{name}: {runs[name]['seconds']:.0f}s", flush=True)
    results = {
        "model": args.model,
        "params": args.params,
        "data": data,
        "threads": args.threads,
        "seed": args.seed,
        "epochs": args.epochs,
        "same_global_batch": args.same_global_batch,
        "load": load,
        "runs": runs,
        "validation": rank_validation(store, paths),
    }
    print(json.dumps(results["validation"], indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_doc:
        write_doc(results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
