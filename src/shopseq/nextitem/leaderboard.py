"""One leaderboard per split: every model beside the baselines, with intervals and a paired test.

The leaderboard refuses to be built without a baseline (``baseline=True`` entries): a metric
without its baseline beside it is not reported. Each model is compared with the best baseline on
the same cases (paired sign-flip test on per-case ``compare_metric``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.errors import InputError
from shopseq.metrics.ranking import per_case_metric, summarize
from shopseq.metrics.stats import PairedTest, paired_test
from shopseq.nextitem.evaluation import RankingConfig, Scorer, rank_cases
from shopseq.sequences import EvalCases

__all__ = [
    "Leaderboard",
    "LeaderboardEntry",
    "LeaderboardRow",
    "build_leaderboard",
    "write_leaderboard_csv",
    "write_leaderboard_json",
]


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """A fitted model to rank.

    Attributes:
        name: Display name.
        scorer: The fitted model.
        baseline: Whether it is a baseline (at least one entry must be).
        fit_seconds: Wall time of ``fit``.
        info: Extra facts recorded with the row (epochs, seconds per epoch, threads, ...).
    """

    name: str
    scorer: Scorer
    baseline: bool
    fit_seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One model's results.

    Attributes:
        model: Name.
        baseline: Whether it is a baseline.
        protocol: Ranking protocol (``full`` / ``sampled-N``, seen excluded or not).
        exclude_seen: Whether seen items were excluded.
        n_cases: Cases ranked.
        n_cold_targets: Cases with a target unknown to the models (misses for everyone).
        metrics: ``HR@k``, ``MRR@k``, ``NDCG@k``.
        ci_low: Lower 95 % bootstrap bound per metric.
        ci_high: Upper bound per metric.
        coverage: Catalogue coverage of the top ``coverage_k`` (``None`` when sampled).
        avg_popularity: Mean training count of recommended items (``None`` when sampled).
        fit_seconds: Wall time of ``fit``.
        eval_seconds: Wall time of scoring and ranking all cases.
        cases_per_second: Cases scored and ranked per second.
        vs_baseline: Paired test against the best baseline (``None`` for that baseline).
        info: Extra facts from the entry.
    """

    model: str
    baseline: bool
    protocol: str
    exclude_seen: bool
    n_cases: int
    n_cold_targets: int
    metrics: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    coverage: float | None
    avg_popularity: float | None
    fit_seconds: float | None
    eval_seconds: float
    cases_per_second: float
    vs_baseline: PairedTest | None
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """All rows of one evaluation, best ``compare_metric`` first.

    Attributes:
        dataset: What was evaluated.
        split: Split protocol name.
        compare_metric: Metric that orders rows and is tested pairwise.
        best_baseline: Name of the best baseline (reference of the paired tests).
        config: The ranking configuration.
        rows: The rows.
    """

    dataset: str
    split: str
    compare_metric: str
    best_baseline: str
    config: RankingConfig
    rows: list[LeaderboardRow]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view.

        Returns:
            Plain dicts and lists.
        """
        return {
            "dataset": self.dataset,
            "split": self.split,
            "compare_metric": self.compare_metric,
            "best_baseline": self.best_baseline,
            "config": self.config.model_dump(mode="json"),
            "rows": [asdict(row) for row in self.rows],
        }

    def flat_rows(self) -> list[dict[str, Any]]:
        """One flat record per row (for CSV and data frames).

        Returns:
            Records with one column per metric and bound.
        """
        out = []
        for row in self.rows:
            record: dict[str, Any] = {
                "dataset": self.dataset,
                "split": self.split,
                "model": row.model,
                "baseline": row.baseline,
                "protocol": row.protocol,
                "exclude_seen": row.exclude_seen,
                "n_cases": row.n_cases,
                "n_cold_targets": row.n_cold_targets,
            }
            for name, value in row.metrics.items():
                record[name] = value
                record[f"{name}_low"] = row.ci_low.get(name)
                record[f"{name}_high"] = row.ci_high.get(name)
            record.update(
                coverage=row.coverage,
                avg_popularity=row.avg_popularity,
                fit_seconds=row.fit_seconds,
                eval_seconds=row.eval_seconds,
                cases_per_second=row.cases_per_second,
                diff_vs_baseline=row.vs_baseline.diff if row.vs_baseline else None,
                p_vs_baseline=row.vs_baseline.p_value if row.vs_baseline else None,
            )
            record.update({f"info_{k}": v for k, v in row.info.items()})
            out.append(record)
        return out


def build_leaderboard(
    entries: list[LeaderboardEntry],
    cases: EvalCases,
    n_items: int,
    config: RankingConfig,
    *,
    dataset: str,
    split: str,
    item_counts: np.ndarray | None = None,
    compare_metric: str = "NDCG@10",
) -> Leaderboard:
    """Rank every entry on the same cases and compare each with the best baseline.

    Args:
        entries: Fitted models (at least one baseline).
        cases: Evaluation cases.
        n_items: Vocabulary size including padding.
        config: Ranking protocol.
        dataset: Dataset name for the records.
        split: Split protocol name for the records.
        item_counts: Training counts per item (average popularity).
        compare_metric: Metric ordering the rows and used for the paired tests.

    Returns:
        The leaderboard.

    Raises:
        InputError: Without a baseline entry, with duplicate names, or an unknown metric.
    """
    if not any(e.baseline for e in entries):
        raise InputError(
            "a leaderboard needs at least one baseline entry (baseline=True); got "
            f"{[e.name for e in entries]}"
        )
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise InputError(f"leaderboard entry names must be unique; got {names}")
    if compare_metric not in summarize(np.zeros(1, np.int64), config.ks):
        raise InputError(
            f"compare_metric must look like NDCG@10 with k in {config.ks}; got {compare_metric!r}"
        )
    results = {e.name: rank_cases(e.scorer, cases, n_items, config, item_counts) for e in entries}
    per_case = {name: per_case_metric(r.ranks, compare_metric) for name, r in results.items()}
    best_baseline = max(
        (e.name for e in entries if e.baseline), key=lambda n: results[n].metrics[compare_metric]
    )
    rows = []
    for entry in entries:
        result = results[entry.name]
        test = None
        if entry.name != best_baseline and result.n_cases:
            test = paired_test(
                per_case[entry.name],
                per_case[best_baseline],
                n_resamples=max(config.n_bootstrap, 200),
                seed=config.seed,
            )
        rows.append(
            LeaderboardRow(
                model=entry.name,
                baseline=entry.baseline,
                protocol=result.protocol,
                exclude_seen=result.exclude_seen,
                n_cases=result.n_cases,
                n_cold_targets=result.n_cold_targets,
                metrics=result.metrics,
                ci_low={k: v[0] for k, v in result.ci.items()},
                ci_high={k: v[1] for k, v in result.ci.items()},
                coverage=result.coverage,
                avg_popularity=result.avg_popularity,
                fit_seconds=entry.fit_seconds,
                eval_seconds=result.seconds,
                cases_per_second=result.n_cases / result.seconds if result.seconds else 0.0,
                vs_baseline=test,
                info=dict(entry.info),
            )
        )
    rows.sort(key=lambda r: -r.metrics[compare_metric])
    return Leaderboard(dataset, split, compare_metric, best_baseline, config, rows)


def write_leaderboard_json(board: Leaderboard, path: Path) -> None:
    """Write the leaderboard as JSON (atomically).

    Args:
        board: The leaderboard.
        path: Destination.
    """
    atomic_write_json(path, board.to_dict())


def write_leaderboard_csv(board: Leaderboard, path: Path) -> None:
    """Write one CSV row per model (atomically).

    Args:
        board: The leaderboard.
        path: Destination.
    """
    records = board.flat_rows()
    columns: list[str] = []
    for record in records:
        columns.extend(c for c in record if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)
    atomic_write_bytes(path, buffer.getvalue().encode())
