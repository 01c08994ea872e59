"""Next-item leaderboard on every dataset with sequences in ../shared/data.

Benchmark files are read as their papers split them (leave-one-out for SASRec / BERT4Rec /
S3-Rec files, every prefix for GCE-GNN's Diginetica, session-rec's files for YooChoose); the
e-commerce logs go through ingest -> prepare -> a global time cut (last 10 % of events test,
the 10 % before validate). Every model is fitted on ``split.train`` with ``split.valid`` for early
stopping (selection never sees test), then ranks the test cases over the full catalogue;
baselines are always in the table. Results are kept per (dataset, protocol, model) in
``benchmarks/results/next_item.json`` so one run can add or replace some models' rows (e.g.
``--models sasrec``) and the section of docs/BENCHMARKS.md is rewritten from all rows.

Example (baselines on everything, then SASRec on two datasets)::

    PYTHONPATH=src nice -n 10 python benchmarks/next_item.py --models popularity markov itemknn sknn
    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 PYTHONPATH=src \\
        nice -n 10 python benchmarks/next_item.py --models sasrec --datasets bert4rec-beauty \\
        sasrec-video --params sasrec='{"loss": "sampled_ce"}' --max-epochs 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_report import machine_line, write_section

from shopseq.artifacts import atomic_write_json
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.nextitem.evaluation import RankingConfig
from shopseq.prepare import PREPARED_TABLE, PrepareConfig, prepare_events
from shopseq.runs.catalogue import NEXT_ITEM_MODELS
from shopseq.runs.nextitem import fit_model, model_config, rank_beside_baselines
from shopseq.runtime import TorchRuntime
from shopseq.sequences import Sequences, Split
from shopseq.sequences.benchmark_files import (
    read_gce_gnn,
    read_session_rec,
    read_user_item_pairs,
    read_user_sequence_lines,
)
from shopseq.sequences.protocols import SplitConfig, split_events
from shopseq.store import open_store

BASELINES = sorted(name for name, spec in NEXT_ITEM_MODELS.items() if spec.baseline)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SHOPSEQ_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "next_item.json"


@dataclass(frozen=True)
class Protocol:
    """How test cases are ranked on one dataset."""

    exclude_seen: bool
    sampled_negatives: int | None = None

    @property
    def name(self) -> str:
        base = "full" if self.sampled_negatives is None else f"sampled-{self.sampled_negatives}"
        return base + (", seen excluded" if self.exclude_seen else ", seen kept")


@dataclass(frozen=True)
class Dataset:
    """One benchmark: how to load it, how to rank it, and the published figures to compare."""

    load: Callable[[], Split]
    protocols: tuple[Protocol, ...]
    note: str
    anchor: str = ""


def _log(layout: str, *paths: str) -> Callable[[], Split]:
    def load() -> Split:
        with open_store(None, threads=2) as store:
            ingest_files(
                [DATA / p for p in paths], IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store
            )
            prepare_events(store, PrepareConfig())
            return split_events(store.table(PREPARED_TABLE), SplitConfig())

    return load


_SEEN = Protocol(exclude_seen=True)
_KEPT = Protocol(exclude_seen=False)
_SB = "sequential-benchmarks"
_DG = "diginetica/gce-gnn-processed"
_YC = "yoochoose/yoochoose-clicks-100k"
DATASETS: dict[str, Dataset] = {
    "sasrec-video": Dataset(
        lambda: read_user_item_pairs(DATA / _SB / "sasrec/Video.txt"),
        (Protocol(exclude_seen=True, sampled_negatives=100), _SEEN),
        "SASRec 'Games' file, leave-one-out",
        "SASRec paper (sampled-100): HR@10 0.7410, NDCG@10 0.5360; SASRec.pytorch 0.7318 / 0.5308",
    ),
    "bert4rec-beauty": Dataset(
        lambda: read_user_item_pairs(DATA / _SB / "bert4rec/beauty.txt"),
        (_SEEN,),
        "BERT4Rec Beauty file, leave-one-out",
        "SASRec + full CE (Klenitskiy & Vasilev 2023): HR@10 0.0533, NDCG@10 0.0327; "
        "SASRec BCE-1: 0.0246 / 0.0126",
    ),
    "s3rec-beauty": Dataset(
        lambda: read_user_sequence_lines(DATA / _SB / "s3rec/Beauty.txt"),
        (_SEEN,),
        "S3-Rec Beauty file, leave-one-out",
    ),
    "s3rec-sports": Dataset(
        lambda: read_user_sequence_lines(DATA / _SB / "s3rec/Sports_and_Outdoors.txt"),
        (_SEEN,),
        "S3-Rec Sports file, leave-one-out",
    ),
    "s3rec-toys": Dataset(
        lambda: read_user_sequence_lines(DATA / _SB / "s3rec/Toys_and_Games.txt"),
        (_SEEN,),
        "S3-Rec Toys file, leave-one-out",
    ),
    "diginetica-gcegnn": Dataset(
        lambda: read_gce_gnn(
            DATA / _DG / "all_train_seq.sessions.txt", DATA / _DG / "test.target_prefix.tsv"
        ),
        (_KEPT,),
        "GCE-GNN Diginetica, every prefix -> next item (P@20 = HR@20); last 5 % of training "
        "sessions validate",
        "P@20 / MRR@20: SR-GNN 50.7 / 17.6, GCE-GNN 54.2 / 19.0",
    ),
    "yoochoose-100k": Dataset(
        lambda: read_session_rec(
            DATA / f"{_YC}_train_full.txt",
            DATA / f"{_YC}_test.txt",
            train_tr=DATA / f"{_YC}_train_tr.txt",
            train_valid=DATA / f"{_YC}_train_valid.txt",
        ),
        (_KEPT,),
        "session-rec YooChoose 100k: fit on train_tr (valid = train_valid), every test position",
        "GRU4Rec official (fit on train_full): Recall@20 0.6783, MRR@20 0.3534",
    ),
    "taobao": Dataset(
        _log("taobao", "taobao-userbehavior/UserBehavior_timeslice_110k.csv"),
        (_KEPT,),
        "Taobao 2-hour slice, users, time cut",
    ),
    "rees46": Dataset(
        _log("rees46", "rees46-multi-category-store/2019-Oct_first17434rows.csv"),
        (_KEPT,),
        "REES46 first 17k rows, users, time cut",
    ),
    "retailrocket": Dataset(
        _log("retailrocket-sessions", "retailrocket/sample_retailrocket.csv"),
        (_KEPT,),
        "RetailRocket sample, users, time cut",
    ),
    "diginetica-views": Dataset(
        _log("diginetica-views", "diginetica/sample_train-item-views.csv"),
        (_KEPT,),
        "Diginetica views sample, users, time cut",
    ),
    "online-retail": Dataset(
        _log("online-retail", "online-retail/online_retail_cleaned_531k.parquet"),
        (_KEPT,),
        "UCI Online Retail purchases, customers, time cut",
    ),
}


def _latency(model: Any, histories: Sequences, repeats: int = 50) -> tuple[float, float]:
    """Median ms of recommend(k=10) for one history, and ms per history in a batch of 256."""
    n = len(histories)
    singles = []
    for i in range(min(repeats, n)):
        one = histories.subset(np.array([i]))
        started = time.perf_counter()
        model.recommend(one, 10)
        singles.append(time.perf_counter() - started)
    batch = histories.subset(np.arange(min(256, n)))
    started = time.perf_counter()
    model.recommend(batch, 10)
    per = (time.perf_counter() - started) / max(len(batch), 1)
    return float(np.median(singles) * 1e3), per * 1e3


def run_dataset(
    name: str, models: list[str], params: dict[str, dict[str, Any]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    spec = DATASETS[name]
    started = time.perf_counter()
    split = spec.load()
    print(f"[{name}] loaded in {time.perf_counter() - started:.1f}s: {split.report}", flush=True)
    # Popularity is always fitted: it is the reference every row is tested against.
    names = list(dict.fromkeys(["popularity", *models]))
    fitted, latency = [], {}
    runtime = TorchRuntime(
        threads=args.threads, progress=True, max_train_seconds=args.max_train_seconds
    )
    for model_name in names:
        config = model_config(
            model_name,
            params.get(model_name, {}),
            n_epochs=args.max_epochs,
            seed=args.seed,
            threads=args.threads,
        )
        done = fit_model(
            model_name, config, runtime, split.train, split.item_vocab.size, split.valid
        )
        print(f"[{name}] fitted {model_name} in {done.seconds:.1f}s {done.info}", flush=True)
        histories = split.test.histories(200, np.arange(min(len(split.test), 512)))
        latency[model_name] = _latency(done.model, histories)
        fitted.append(done)
    rows = []
    for protocol in spec.protocols:
        ranking = RankingConfig(
            exclude_seen=protocol.exclude_seen,
            sampled_negatives=protocol.sampled_negatives,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
        )
        board = rank_beside_baselines(fitted, split, ranking, dataset=name)
        for row in board.rows:
            if row.model not in models:
                continue  # popularity only as the reference when not asked for
            single, batch = latency[row.model]
            rows.append(
                {
                    "dataset": name,
                    "protocol": protocol.name,
                    "model": row.model,
                    "baseline": row.baseline,
                    "n_cases": row.n_cases,
                    "n_cold_targets": row.n_cold_targets,
                    "n_items": split.item_vocab.size - 1,
                    "n_train_events": split.report.n_train_events,
                    "metrics": row.metrics,
                    "ndcg10_ci": [row.ci_low.get("NDCG@10"), row.ci_high.get("NDCG@10")],
                    "coverage": row.coverage,
                    "fit_seconds": row.fit_seconds,
                    "eval_seconds": row.eval_seconds,
                    "cases_per_second": row.cases_per_second,
                    "recommend_ms_one": single,
                    "recommend_ms_per_user_batch256": batch,
                    "p_vs_reference": row.vs_baseline.p_value if row.vs_baseline else None,
                    "reference": board.best_baseline,
                    "info": row.info,
                    "threads": row.info.get("threads", 1),
                    "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "command": "python " + " ".join(sys.argv),
                }
            )
            print(
                f"[{name}] {protocol.name} {row.model}: HR@10 {row.metrics['HR@10']:.4f} "
                f"NDCG@10 {row.metrics['NDCG@10']:.4f} HR@20 {row.metrics['HR@20']:.4f} "
                f"MRR@20 {row.metrics['MRR@20']:.4f} ({row.eval_seconds:.1f}s)",
                flush=True,
            )
    return rows


def catalogue_latency(models: list[str], n_items: int = 100_000) -> list[dict[str, Any]]:
    """recommend() latency for one user over a synthetic 100k-item catalogue."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 20, 20_000)
    # Zipf-like item draws: realistic co-occurrence sparsity.
    items = np.minimum(rng.zipf(1.2, int(lengths.sum())), n_items - 1).astype(np.int32)
    train = Sequences.from_lists(np.split(items, np.cumsum(lengths)[:-1]))
    histories = Sequences.from_lists([rng.integers(1, n_items, 10) for _ in range(300)])
    rows = []
    for name in models:
        if name not in BASELINES:
            continue  # neural models: measured by their own runs (score cost depends on config)
        config = model_config(name, {}, n_epochs=None, seed=0)
        model = fit_model(name, config, TorchRuntime(), train, n_items, None).model
        single, batch = _latency(model, histories, repeats=200)
        rows.append({"model": name, "n_items": n_items, "ms_one": single, "ms_batch": batch})
        print(f"[latency 100k] {name}: one user {single:.2f} ms, batch {batch:.3f} ms/user")
    return rows


def _p_value(row: dict[str, Any]) -> float | None:
    value = row.get("p_vs_reference", row.get("p_vs_popularity"))
    return None if value is None else float(value)


def _p_cell(row: dict[str, Any], fallback: str) -> str:
    p = _p_value(row)
    if p is None:
        return "reference"
    return f"{p:.3f} (vs {row.get('reference', fallback)})"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(results: dict[str, Any]) -> str:
    lines = ["## Next-item prediction", ""]
    lines.append(
        "Full ranking over the whole catalogue unless the protocol says `sampled-N`; ties ranked "
        "pessimistically; models fitted on the training side with early stopping on validation "
        "only. HR@20 is P@20 of the session papers. 95 % bootstrap interval of NDCG@10 in "
        "brackets; p = paired sign-flip test on per-case NDCG@10 against the best baseline fitted "
        "in the same run (`reference`). "
        "`s/epoch` and `seq/s` are for neural models (threads recorded); recommend latency is "
        "`recommend(k=10)` for one history (median) and per history in a batch of 256."
    )
    rows = results.get("rows", [])
    for dataset, spec in DATASETS.items():
        for protocol in spec.protocols:
            chosen = [r for r in rows if r["dataset"] == dataset and r["protocol"] == protocol.name]
            if not chosen:
                continue
            chosen.sort(key=lambda r: -r["metrics"]["NDCG@10"])
            first = chosen[0]
            # Rows written by an older run lack "reference": it is the row without a p-value.
            fallback = next((r["model"] for r in chosen if _p_value(r) is None), "-")
            lines += [
                "",
                f"### {dataset} — {protocol.name}",
                "",
                f"{spec.note}; {first['n_cases']:,} test cases, {first['n_items']:,} items, "
                f"{first['n_train_events']:,} training events, {first['n_cold_targets']:,} "
                "cold-start targets (misses).",
            ]
            if spec.anchor:
                lines.append(f"Published: {spec.anchor}.")
            lines += [
                "",
                "| model | HR@10 | NDCG@10 [95 % CI] | HR@20 | MRR@20 | coverage@10 | fit s | "
                "s/epoch | seq/s | threads | eval cases/s | rec 1 (ms) | rec batch (ms/user) | "
                "p (vs best baseline fitted in the same run) | measured |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in chosen:
                m, ci, info = r["metrics"], r["ndcg10_ci"], r.get("info", {})
                interval = f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci[0] is not None else ""
                lines.append(
                    f"| {r['model']}{' (baseline)' if r['baseline'] else ''} | {m['HR@10']:.4f} | "
                    f"{m['NDCG@10']:.4f}{interval} | {m['HR@20']:.4f} | {m['MRR@20']:.4f} | "
                    f"{_fmt(r['coverage'], 3)} | {_fmt(r['fit_seconds'], 1)} | "
                    f"{_fmt(info.get('seconds_per_epoch'), 1)} | "
                    f"{_fmt(info.get('sequences_per_s'), 0)} | {r.get('threads', 1)} | "
                    f"{r['cases_per_second']:,.0f} | {r['recommend_ms_one']:.2f} | "
                    f"{r['recommend_ms_per_user_batch256']:.3f} | "
                    f"{_p_cell(r, fallback)} | {r['measured_at']} |"
                )
            # Notes written by hand into the results file ("notes": {"<dataset> — <protocol>":
            # text}) are kept across reruns, unlike text typed into the rendered section.
            note = results.get("notes", {}).get(f"{dataset} — {protocol.name}")
            if note:
                lines += ["", note]
    latency = results.get("latency_100k", [])
    if latency:
        lines += [
            "",
            "### recommend latency over a 100k-item catalogue (synthetic, one thread)",
            "",
            "| model | one history, median ms | batch of 256, ms per history |",
            "|---|---|---|",
        ]
        lines += [f"| {r['model']} | {r['ms_one']:.2f} | {r['ms_batch']:.3f} |" for r in latency]
    commands = sorted({r["command"] for r in rows if "command" in r})
    if commands:
        lines += ["", "Rows above were produced by:", ""]
        lines += [f"- `{c}`" for c in commands]
    lines += ["", machine_line(1)]
    return "\n".join(lines)


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for item in items:
        name, _, text = item.partition("=")
        out[name] = json.loads(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=BASELINES, choices=list(NEXT_ITEM_MODELS))
    parser.add_argument("--params", nargs="*", default=[], help="model='{json config}'")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--max-train-seconds",
        type=float,
        default=None,
        help="neural models stop after the epoch that crosses this wall-clock budget",
    )
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-latency", action="store_true", help="skip the 100k-item latency")
    parser.add_argument("--render-only", action="store_true", help="rewrite the section only")
    args = parser.parse_args()
    params = _parse_params(args.params)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.render_only:
        write_section("next_item", render(results))
        return
    for name in args.datasets:
        rows = run_dataset(name, args.models, params, args)
        done = {(r["dataset"], r["protocol"], r["model"]) for r in rows}
        kept = [
            r
            for r in results.get("rows", [])
            if (r["dataset"], r["protocol"], r["model"]) not in done
        ]
        results["rows"] = kept + rows
        atomic_write_json(RESULTS, results)  # after each dataset: a crash keeps what ran
        write_section("next_item", render(results))
    if not args.no_latency:
        latency = catalogue_latency(args.models)
        old = [r for r in results.get("latency_100k", []) if r["model"] not in args.models]
        results["latency_100k"] = old + latency
        atomic_write_json(RESULTS, results)
    write_section("next_item", render(results))


if __name__ == "__main__":
    main()
