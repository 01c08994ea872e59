"""Fit one neural model (SASRec / GRU4Rec) on one published benchmark file and rank its test cases.

Selection uses the validation cases only (early stopping on validation NDCG@10); the test cases
are ranked once, with the kept weights. Prints per-epoch figures and the test metrics, and writes
them as JSON (``--out``). Example::

    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 PYTHONPATH=src \\
    nice -n 10 python benchmarks/neural_tuning.py beauty sasrec \\
        --config '{"loss": "sampled_ce", "n_negatives": 4096}' --out /tmp/beauty_sasrec.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shopseq.artifacts import atomic_write_json
from shopseq.nextitem.evaluation import RankingConfig, rank_cases
from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.nextitem.sasrec import SASRec, SASRecConfig
from shopseq.runtime import TorchRuntime
from shopseq.sequences import Split
from shopseq.sequences.benchmark_files import read_gce_gnn, read_user_item_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_report import machine_line, write_section

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "neural_tuning"


def load(dataset: str) -> tuple[Split, bool, int | None]:
    """Return the split, whether seen items are excluded, and sampled negatives (paper protocol)."""
    if dataset == "beauty":
        return read_user_item_pairs(DATA / "sequential-benchmarks/bert4rec/beauty.txt"), True, None
    if dataset == "video":
        return read_user_item_pairs(DATA / "sequential-benchmarks/sasrec/Video.txt"), True, 100
    if dataset == "diginetica":
        root = DATA / "diginetica/gce-gnn-processed"
        split = read_gce_gnn(root / "all_train_seq.sessions.txt", root / "test.target_prefix.tsv")
        return split, False, None  # SR-GNN / GCE-GNN rank over all items, repeats allowed
    raise SystemExit(f"unknown dataset {dataset!r}; expected beauty, video or diginetica")


ANCHORS = {
    "beauty": "SASRec + full CE (Klenitskiy & Vasilev 2023), full ranking: HR@10 0.0533, "
    "NDCG@10 0.0327",
    "video": "SASRec paper, sampled-100: HR@10 0.7410, NDCG@10 0.5360",
    "diginetica": "SR-GNN P@20 50.7 / MRR@20 17.6; GCE-GNN 54.2 / 19.0 (full ranking)",
}


def _valid_score(training: dict[str, Any]) -> float:
    # Runs recorded before the loop took a validation callback call it best_valid_ndcg.
    return float(training.get("best_valid_score", training.get("best_valid_ndcg")))


def _command(result: dict[str, Any]) -> str:
    """The command that reproduces a result (fields that differ from the defaults)."""
    defaults = (SASRecConfig() if result["model"] == "sasrec" else GRU4RecConfig()).model_dump(
        mode="json"
    )
    defaults.update(TorchRuntime().model_dump(mode="json"))
    # Older results kept the runtime (threads, budget) inside the model config.
    fields = {**result["config"], **result.get("runtime", {})}
    changed = {
        k: v
        for k, v in fields.items()
        if v != defaults.get(k) and k not in {"checkpoint", "valid_exclude_seen", "progress"}
    }
    return (
        f"python benchmarks/neural_tuning.py {result['dataset']} {result['model']} "
        f"--config '{json.dumps(changed)}'"
    )


def render(paths: list[Path]) -> None:
    """Copy finished runs' JSON into benchmarks/results/neural_tuning/ and rewrite the section."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for path in paths:
        result = json.loads(path.read_text())
        result.setdefault(
            "measured_at", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
        )
        target = RESULTS / f"{result['dataset']}_{result['model']}.json"
        if target.exists():
            # Model selection on validation only: keep whichever run validated better.
            kept = json.loads(target.read_text())
            if _valid_score(kept["training"]) > _valid_score(result["training"]):
                print(f"{path}: validated worse than the kept {target.name}; not used")
                continue
        atomic_write_json(target, result)
    lines = [
        "## Neural models on the published benchmark files (benchmarks/neural_tuning.py)",
        "",
        "One run per row: fitted on `train`, early stopping on validation NDCG@10 (a seeded "
        "sample of the validation cases), test ranked once with the kept weights. Epoch times "
        "are wall-clock on the shared 2-core machine under heavy load from other jobs (load "
        "average 4-8), so they are 3-5x a quiet machine's; `seq/s` = training windows per "
        "second, 1 torch thread.",
        "",
        "| dataset | model | protocol | HR@10 | NDCG@10 | HR@20 (P@20) | MRR@20 | valid NDCG@10 "
        "| epochs (best) | s/epoch | seq/s | stopped by | measured | reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        training = result["training"]
        epochs = training["epochs"]
        seconds = sum(e["seconds"] for e in epochs) / len(epochs)
        speed = sum(e["sequences_per_s"] for e in epochs) / len(epochs)
        stop = "time budget / patience" if training["stopped_early"] else "n_epochs"
        for key in ("full", "sampled-100"):
            if key not in result:
                continue
            m = result[key]["metrics"]
            lines.append(
                f"| {result['dataset']} | {result['model']} | {result[key]['protocol']} | "
                f"{m['HR@10']:.4f} | {m['NDCG@10']:.4f} | {m['HR@20']:.4f} | {m['MRR@20']:.4f} | "
                f"{_valid_score(training):.4f} | {len(epochs)} ({training['best_epoch']}) | "
                f"{seconds:.0f} | {speed:.0f} | {stop} | {result['measured_at']} | "
                f"{ANCHORS[result['dataset']]} |"
            )
        commands.append(_command(result))
    lines += [
        "",
        "Rows above were produced by (each with `PYTHONPATH=src nice -n 10` and "
        "`MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296`; then "
        "`--render <the --out files>` writes this section):",
        "",
    ] + [f"- `{c}`" for c in commands]
    lines += ["", machine_line(1)]
    write_section("neural_tuning", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", choices=["beauty", "video", "diginetica"])
    parser.add_argument("model", nargs="?", choices=["sasrec", "gru4rec"])
    parser.add_argument("--config", default="{}", help="JSON of config fields to override")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--render", type=Path, nargs="+", default=None, help="finished runs' --out files"
    )
    args = parser.parse_args()
    if args.render:
        render(args.render)
        return
    if args.dataset is None or args.model is None:
        parser.error("dataset and model are required unless --render is given")

    t0 = time.perf_counter()
    split, exclude_seen, sampled = load(args.dataset)
    n_items = len(split.item_vocab.ids) + 1
    overrides = json.loads(args.config)
    overrides.setdefault("valid_exclude_seen", exclude_seen)
    # Threads, time budget and checkpoint are the runtime's, not hyper-parameters.
    runtime_fields = {
        k: overrides.pop(k) for k in list(overrides) if k in TorchRuntime.model_fields
    }
    runtime_fields.setdefault("progress", True)
    if args.out is not None:  # best weights + per-epoch records while it runs
        runtime_fields.setdefault("checkpoint", str(args.out.with_suffix(".pt")))
    runtime = TorchRuntime(**runtime_fields)
    model: SASRec | GRU4Rec
    if args.model == "sasrec":
        model = SASRec(SASRecConfig(**overrides), runtime)
    else:
        model = GRU4Rec(GRU4RecConfig(**overrides), runtime)
    print(f"{args.dataset}: {split.report}")
    print(f"config: {model.config.model_dump(mode='json')}; runtime: {runtime}")
    print(f"loaded in {time.perf_counter() - t0:.1f}s; n_items={n_items}", flush=True)

    model.fit(split.train, n_items, split.valid)
    report = model.report_
    if report is None:
        raise SystemExit("the model kept no training report")
    for r in report.epochs:
        print(
            f"epoch {r.epoch:3d} loss {r.loss:.4f} valid NDCG@10 {r.valid_score:.4f} "
            f"{r.seconds:.1f}s (+{r.valid_seconds:.1f}s valid) {r.sequences_per_s:.0f} seq/s "
            f"{r.targets_per_s:.0f} targets/s threads {r.threads}",
            flush=True,
        )
    counts = np.bincount(np.maximum(split.train.items, 0), minlength=n_items)
    results: dict[str, object] = {
        "dataset": args.dataset,
        "model": args.model,
        "config": model.config.model_dump(mode="json"),
        "runtime": runtime.model_dump(mode="json"),
        "training": report.to_json(),
    }
    protocols = [("full", None)] + ([(f"sampled-{sampled}", sampled)] if sampled else [])
    for name, negatives in protocols:
        config = RankingConfig(
            exclude_seen=exclude_seen, sampled_negatives=negatives, n_bootstrap=200
        )
        result = rank_cases(model, split.test, n_items, config, item_counts=counts)
        summary = {k: round(v, 4) for k, v in result.metrics.items()}
        print(f"test {result.protocol}: {summary} ({result.seconds:.1f}s)", flush=True)
        results[name] = {
            "protocol": result.protocol,
            "metrics": result.metrics,
            "ci": result.ci,
            "n_cases": result.n_cases,
            "n_cold_targets": result.n_cold_targets,
            "seconds": result.seconds,
        }
    print(f"total {time.perf_counter() - t0:.0f}s; best epoch {report.best_epoch}")
    results["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.out is not None:
        atomic_write_json(args.out, results)


if __name__ == "__main__":
    main()
