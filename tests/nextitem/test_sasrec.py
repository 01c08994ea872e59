"""SASRec-specific checks: learns a planted next-item rule, save/load, seeds, early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import InputError, NotFittedError
from shopseq.metrics.ranking import hit_rate_at_k, ndcg_at_k, target_ranks
from shopseq.nextitem.sasrec import SASRec, SASRecConfig, SASRecNet, _SASRecTask
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


def small_config(**changes) -> SASRecConfig:
    fields = dict(
        max_len=10,
        hidden_size=32,
        n_blocks=1,
        dropout=0.1,
        lr=5e-3,
        n_epochs=12,
        batch_size=32,
        patience=None,
        seed=0,
    )
    fields.update(changes)
    return SASRecConfig(**fields)


@pytest.mark.parametrize("loss", ["ce", "sampled_ce", "bce"])
def test_sasrec_learns_planted_rule_far_above_popularity(loss: str) -> None:
    train, valid, test, _ = planted_rule()
    model = SASRec(small_config(loss=loss, n_negatives=16, n_epochs=15 if loss == "bce" else 12))
    model.fit(train, N_ITEMS, valid)
    ranks = target_ranks(model.score(test.histories()), test.targets, test.histories())
    popular = np.bincount(train.items, minlength=N_ITEMS).argmax()
    popularity_hit = float(np.mean(test.targets == popular))
    assert popularity_hit < 0.1
    assert hit_rate_at_k(ranks, 1) >= 0.9
    assert ndcg_at_k(ranks, 10) >= 0.9


def test_sasrec_save_load_gives_identical_scores(tmp_path: Path) -> None:
    train, valid, test, _ = planted_rule(n_sequences=60)
    model = SASRec(small_config(n_epochs=2)).fit(train, N_ITEMS, valid)
    model.save(tmp_path / "sasrec")
    loaded = SASRec.load(tmp_path / "sasrec")
    histories = test.histories()
    np.testing.assert_array_equal(model.score(histories), loaded.score(histories))
    assert loaded.config == model.config
    assert (tmp_path / "sasrec" / "weights.pt").is_file()


def test_sasrec_same_seed_same_scores_other_seed_differs() -> None:
    train, _, test, _ = planted_rule(n_sequences=60)
    histories = test.histories()
    first = SASRec(small_config(n_epochs=2)).fit(train, N_ITEMS).score(histories)
    again = SASRec(small_config(n_epochs=2)).fit(train, N_ITEMS).score(histories)
    other = SASRec(small_config(n_epochs=2, seed=1)).fit(train, N_ITEMS).score(histories)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_sasrec_early_stopping_keeps_best_epoch() -> None:
    train, valid, _, _ = planted_rule(n_sequences=60)
    # A learning rate this high makes validation NDCG go up and down; the kept weights must be
    # those of the best epoch, whichever it was.
    model = SASRec(small_config(n_epochs=8, lr=0.05, patience=3)).fit(train, N_ITEMS, valid)
    report = model.report_
    assert report is not None
    ndcgs = [r.valid_score for r in report.epochs]
    assert report.best_epoch == 1 + int(np.argmax(ndcgs))
    ranks = target_ranks(model.score(valid.histories()), valid.targets, valid.histories())
    assert ndcg_at_k(ranks, 10) == pytest.approx(report.best_valid_score)


def test_sasrec_scores_empty_and_unknown_histories() -> None:
    train, _, _, _ = planted_rule(n_sequences=60)
    model = SASRec(small_config(n_epochs=1)).fit(train, N_ITEMS)
    scores = model.score(Sequences.from_lists([[], [-1, 3]]))
    assert scores.shape == (2, N_ITEMS)
    assert np.all(np.isneginf(scores[:, 0])) and np.all(np.isfinite(scores[:, 1:]))
    recs = model.recommend(Sequences.from_lists([[3]]), k=5)
    assert 3 not in recs.items[0] and recs.items.shape == (1, 5)


def test_sasrec_errors_name_the_problem() -> None:
    train, _, _, _ = planted_rule(n_sequences=10)
    with pytest.raises(NotFittedError, match="SASRec is not fitted yet"):
        SASRec().score(train)
    with pytest.raises(InputError, match=r"item index 40 is outside the vocabulary of n_items=40"):
        SASRec(small_config()).fit(train, 40)
    with pytest.raises(InputError, match=r"'n_heads' parameter of SASRecConfig must divide"):
        SASRec(small_config(n_heads=3)).fit(train, N_ITEMS)


def test_sasrec_buckets_keep_windows_whole_around_unknown_items() -> None:
    windows = np.array([[0, 0, 0, 5, 6], [0, 3, 0, 4, 7], [1, 2, 3, 4, 5]])
    config = small_config(max_len=4, batch_size=2)
    task = _SASRecTask(SASRecNet(N_ITEMS, config), windows, N_ITEMS, config)
    assert task.lengths.tolist() == [2, 4, 5]
    batches = list(task.batches(np.random.default_rng(0)))
    assert sorted(int((rows > 0).sum()) for rows, _ in batches) == [2 + 3, 5]
