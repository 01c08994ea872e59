"""Leaderboard orchestration, tested with fake scorers (no model needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.nextitem.evaluation import RankingConfig
from shopseq.nextitem.leaderboard import (
    LeaderboardEntry,
    build_leaderboard,
    write_leaderboard_csv,
    write_leaderboard_json,
)
from shopseq.sequences import EvalCases, Sequences

N_ITEMS = 6


class _Oracle:
    """Scores the true next item (history's last item + 1) highest."""

    def score(self, histories: Sequences) -> np.ndarray:
        out = np.tile(np.linspace(0.0, 0.1, N_ITEMS, dtype=np.float32), (len(histories), 1))
        last = histories.items[histories.offsets[1:] - 1]
        out[np.arange(len(histories)), np.minimum(last + 1, N_ITEMS - 1)] = 1.0
        out[:, 0] = -np.inf
        return out


class _Constant:
    def score(self, histories: Sequences) -> np.ndarray:
        out = np.tile(np.arange(N_ITEMS, dtype=np.float32), (len(histories), 1))
        out[:, 0] = -np.inf
        return out


def _cases() -> EvalCases:
    seqs = Sequences.from_lists([[1, 2, 3, 4], [2, 3, 4, 5]] * 50)
    n = len(seqs)
    return EvalCases(seqs, np.arange(n), np.full(n, 3), seqs.items[seqs.offsets[:-1] + 3])


def test_leaderboard_ranks_models_and_tests_against_best_baseline(tmp_path: Path) -> None:
    board = build_leaderboard(
        [
            LeaderboardEntry("constant", _Constant(), baseline=True, fit_seconds=0.1),
            LeaderboardEntry("oracle", _Oracle(), baseline=False, info={"epochs": 3}),
        ],
        _cases(),
        N_ITEMS,
        RankingConfig(exclude_seen=False, n_bootstrap=100),
        dataset="toy",
        split="fixed",
    )
    assert [r.model for r in board.rows] == ["oracle", "constant"]
    oracle, constant = board.rows
    assert oracle.metrics["HR@1"] == 1.0
    # Constant ranks 5 > 4 > ...: target 4 is 2nd (rank 1), target 5 is 1st.
    assert constant.metrics["HR@1"] == pytest.approx(0.5)
    assert board.best_baseline == "constant"
    assert constant.vs_baseline is None
    assert oracle.vs_baseline is not None and oracle.vs_baseline.p_value < 0.05
    write_leaderboard_json(board, tmp_path / "lb.json")
    write_leaderboard_csv(board, tmp_path / "lb.csv")
    data = json.loads((tmp_path / "lb.json").read_text())
    assert data["rows"][0]["model"] == "oracle"
    assert data["config"]["exclude_seen"] is False
    with (tmp_path / "lb.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["model"] == "oracle" and float(rows[0]["HR@1"]) == 1.0
    assert rows[0]["info_epochs"] == "3"


def test_leaderboard_requires_a_baseline() -> None:
    with pytest.raises(InputError, match="at least one baseline"):
        build_leaderboard(
            [LeaderboardEntry("oracle", _Oracle(), baseline=False)],
            _cases(),
            N_ITEMS,
            RankingConfig(),
            dataset="toy",
            split="fixed",
        )
