"""GRU4Rec-specific checks: learns a planted next-item rule, save/load, seeds, early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import ConfigError, InputError, NotFittedError
from shopseq.metrics.ranking import hit_rate_at_k, ndcg_at_k, target_ranks
from shopseq.nextitem.gru4rec import (
    GRU4Rec,
    GRU4RecConfig,
    GRU4RecNet,
    _GRU4RecTask,
    _session_parallel,
)
from shopseq.sequences import EvalCases, Sequences

N_ITEMS = 41  # 40 items + padding


def planted_rule(n_sequences: int = 240, length: int = 8, seed: int = 0):
    """Sequences where item i is always followed by successor[i] (a fixed random permutation).

    Returns (train, valid, test, successor): leave-last-out cases over the full sequences.
    """
    rng = np.random.default_rng(seed)
    successor = np.concatenate([[0], rng.permutation(np.arange(1, N_ITEMS))]).astype(np.int32)
    lists = []
    for _ in range(n_sequences):
        item = int(rng.integers(1, N_ITEMS))
        seq = [item]
        for _ in range(length - 1):
            item = int(successor[item])
            seq.append(item)
        lists.append(seq)
    full = Sequences.from_lists(lists)
    index = np.arange(n_sequences)
    train = full.prefixes(index, full.lengths - 2, None)
    valid = EvalCases(full, index, full.lengths - 2, full.items[full.offsets[1:] - 2])
    test = EvalCases(full, index, full.lengths - 1, full.items[full.offsets[1:] - 1])
    return train, valid, test, successor


def small_config(**changes) -> GRU4RecConfig:
    fields = dict(
        layers=(32,),
        batch_size=32,
        n_sample=16,
        lr=0.2,
        n_epochs=6,
        patience=None,
        seed=0,
    )
    fields.update(changes)
    return GRU4RecConfig(**fields)


@pytest.mark.parametrize(
    ("loss", "optimizer", "constrained"),
    [
        ("cross-entropy", "adagrad", True),
        ("bpr-max", "adagrad", True),
        ("cross-entropy", "adam", False),
    ],
)
def test_gru4rec_learns_planted_rule_far_above_popularity(
    loss: str, optimizer: str, constrained: bool
) -> None:
    train, valid, test, _ = planted_rule()
    config = small_config(
        loss=loss,
        optimizer=optimizer,
        momentum=0.1 if optimizer == "adagrad" else 0.0,
        lr=0.2 if optimizer == "adagrad" else 0.02,
        constrained_embedding=constrained,
        embedding=0 if constrained else 16,
        dropout_p_hidden=0.1,
        logq=1.0 if loss == "cross-entropy" else 0.0,
    )
    model = GRU4Rec(config)
    model.fit(train, N_ITEMS, valid)
    ranks = target_ranks(model.score(test.histories()), test.targets, test.histories())
    popular = np.bincount(train.items, minlength=N_ITEMS).argmax()
    popularity_hit = float(np.mean(test.targets == popular))
    assert popularity_hit < 0.1
    assert hit_rate_at_k(ranks, 1) >= 0.9
    assert ndcg_at_k(ranks, 10) >= 0.9


def test_gru4rec_save_load_gives_identical_scores(tmp_path: Path) -> None:
    train, valid, test, _ = planted_rule(n_sequences=60)
    model = GRU4Rec(small_config(n_epochs=2)).fit(train, N_ITEMS, valid)
    model.save(tmp_path / "gru4rec")
    loaded = GRU4Rec.load(tmp_path / "gru4rec")
    histories = test.histories()
    np.testing.assert_array_equal(model.score(histories), loaded.score(histories))
    assert loaded.config == model.config
    assert (tmp_path / "gru4rec" / "weights.pt").is_file()


def test_gru4rec_same_seed_same_scores_other_seed_differs() -> None:
    train, _, test, _ = planted_rule(n_sequences=60)
    histories = test.histories()
    first = GRU4Rec(small_config(n_epochs=2)).fit(train, N_ITEMS).score(histories)
    again = GRU4Rec(small_config(n_epochs=2)).fit(train, N_ITEMS).score(histories)
    other = GRU4Rec(small_config(n_epochs=2, seed=1)).fit(train, N_ITEMS).score(histories)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_gru4rec_early_stopping_keeps_best_epoch() -> None:
    train, valid, _, _ = planted_rule(n_sequences=60)
    # A learning rate this high makes validation NDCG go up and down; the kept weights must be
    # those of the best epoch, whichever it was.
    model = GRU4Rec(small_config(n_epochs=8, lr=0.5, patience=3)).fit(train, N_ITEMS, valid)
    report = model.report_
    assert report is not None
    ndcgs = [r.valid_score for r in report.epochs]
    assert report.best_epoch == 1 + int(np.argmax(ndcgs))
    ranks = target_ranks(model.score(valid.histories()), valid.targets, valid.histories())
    assert ndcg_at_k(ranks, 10) == pytest.approx(report.best_valid_score)


def test_gru4rec_scores_empty_and_unknown_histories() -> None:
    train, _, _, _ = planted_rule(n_sequences=60)
    model = GRU4Rec(small_config(n_epochs=1)).fit(train, N_ITEMS)
    scores = model.score(Sequences.from_lists([[], [-1, 3]]))
    assert scores.shape == (2, N_ITEMS)
    assert np.all(np.isneginf(scores[:, 0])) and np.all(np.isfinite(scores[:, 1:]))
    recs = model.recommend(Sequences.from_lists([[3]]), k=5)
    assert 3 not in recs.items[0] and recs.items.shape == (1, 5)


def test_gru4rec_errors_name_the_problem() -> None:
    train, _, _, _ = planted_rule(n_sequences=10)
    with pytest.raises(NotFittedError, match="GRU4Rec is not fitted yet"):
        GRU4Rec().score(train)
    with pytest.raises(InputError, match=r"item index 40 is outside the vocabulary of n_items=40"):
        GRU4Rec(small_config()).fit(train, 40)
    with pytest.raises(InputError, match=r"none of the 2 training sequences has 2 events"):
        GRU4Rec(small_config()).fit(Sequences.from_lists([[1], [2]]), N_ITEMS)
    with pytest.raises(ConfigError, match=r"one-hot input layer is not implemented"):
        GRU4Rec(small_config(constrained_embedding=False)).fit(train, N_ITEMS)


def test_session_parallel_schedule_visits_every_pair_once() -> None:
    lengths = [3, 1, 5, 2, 4, 2]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    usable = np.array([i for i, n in enumerate(lengths) if n >= 2])
    seen, resets = [], 0
    for positions, finished, kept in _session_parallel(offsets, usable, batch_size=2):
        if finished is None:
            seen.extend(positions.tolist())
        else:
            resets += int(finished.sum())
            assert kept is not None and len(kept) == len(finished)
    expected = [p for i in usable for p in range(offsets[i], offsets[i + 1] - 1)]
    assert sorted(seen) == expected
    assert resets == len(usable)


def test_gru4rec_drops_unknown_training_items() -> None:
    train = Sequences.from_lists([[1, -1, 2, 3], [-1, 4], [5, 6]])
    config = small_config(n_epochs=1)
    task = _GRU4RecTask(GRU4RecNet(N_ITEMS, config), train, N_ITEMS, config)
    assert task.n_sequences == 2  # [1, 2, 3] and [5, 6]; [4] alone has no pair
    assert task.n_events == 3
    assert task.items.min() > 0
