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
import time
from pathlib import Path

import numpy as np

from shopseq.artifacts import atomic_write_json
from shopseq.evaluate.ranking import RankingConfig, rank_cases
from shopseq.models.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.models.sasrec import SASRec, SASRecConfig
from shopseq.sequences import Split
from shopseq.sequences.benchmark_files import read_gce_gnn, read_user_item_pairs

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["beauty", "video", "diginetica"])
    parser.add_argument("model", choices=["sasrec", "gru4rec"])
    parser.add_argument("--config", default="{}", help="JSON of config fields to override")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    split, exclude_seen, sampled = load(args.dataset)
    n_items = len(split.item_vocab.ids) + 1
    overrides = json.loads(args.config)
    overrides.setdefault("valid_exclude_seen", exclude_seen)
    if args.out is not None:  # best weights + per-epoch records while it runs
        overrides.setdefault("checkpoint", str(args.out.with_suffix(".pt")))
    model: SASRec | GRU4Rec
    if args.model == "sasrec":
        model = SASRec(SASRecConfig(**overrides))
    else:
        model = GRU4Rec(GRU4RecConfig(**overrides))
    print(f"{args.dataset}: {split.report}")
    print(f"config: {model.config.model_dump(mode='json')}")
    print(f"loaded in {time.perf_counter() - t0:.1f}s; n_items={n_items}", flush=True)

    model.fit(split.train, n_items, split.valid)
    report = model.report_
    assert report is not None
    for r in report.epochs:
        print(
            f"epoch {r.epoch:3d} loss {r.loss:.4f} valid NDCG@10 {r.valid_ndcg:.4f} "
            f"{r.seconds:.1f}s (+{r.valid_seconds:.1f}s valid) {r.sequences_per_s:.0f} seq/s "
            f"{r.targets_per_s:.0f} targets/s threads {r.threads}",
            flush=True,
        )
    counts = np.bincount(np.maximum(split.train.items, 0), minlength=n_items)
    results: dict[str, object] = {
        "dataset": args.dataset,
        "model": args.model,
        "config": model.config.model_dump(mode="json"),
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
    if args.out is not None:
        atomic_write_json(args.out, results)


if __name__ == "__main__":
    main()
