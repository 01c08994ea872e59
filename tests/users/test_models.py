"""LightGBM per-user models, baselines, reasons and the leaderboard on planted signals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from shopseq.errors import ArtifactError, InputError, NotFittedError
from shopseq.metrics.classification import expected_calibration_error, macro_f1, roc_auc
from shopseq.sequences import LabelConfig
from shopseq.users.baselines import (
    ActionMarkov,
    FeatureRule,
    MedianGap,
    MostFrequentAction,
    RepeatLastAction,
    baselines_for,
)
from shopseq.users.evaluation import evaluate_predictions
from shopseq.users.gbm import GBM, GBMConfig
from shopseq.users.reasons import describe_feature, reason_sentences
from shopseq.users.tasks import ACTION_NAMES, TASKS, Examples

NAMES = ("recency_days", "n_cart_short", "noise", "last_action", "median_gap_seconds")


def _examples(n: int, seed: int, *, shift: float = 0.0) -> Examples:
    """Churn planted in a non-monotone way in two features; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(10, n)
    carts = rng.poisson(1.0, n).astype(float)
    noise = rng.normal(size=n)
    last = rng.integers(0, 6, n).astype(float)
    gap = rng.exponential(3600, n)
    logit = -1 + 0.25 * recency - 1.5 * carts + 2.5 * (np.abs(recency - 12) < 3) + shift
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    features = np.column_stack([recency, carts, noise, last, gap]).astype(np.float32)
    keys = pa.table({"user_id": [f"u{i}" for i in range(n)]})
    return Examples(keys, features, NAMES, y, np.ones(n, bool))


def test_gbm_beats_a_one_feature_rule_and_calibrates_on_a_later_snapshot() -> None:
    train, valid, test = (
        _examples(6000, 0),
        _examples(3000, 1, shift=1.0),
        _examples(3000, 2, shift=1.0),
    )
    rule = FeatureRule("recency_days").fit(train)
    raw = GBM(GBMConfig(calibration="none", n_estimators=150)).fit(train, valid)
    calibrated = GBM(GBMConfig(n_estimators=150)).fit(train, valid)
    assert roc_auc(test.y, calibrated.predict(test)) > roc_auc(test.y, rule.predict(test)) + 0.03
    # The later snapshots drifted up (shift): only the calibrated model follows.
    raw_ece = expected_calibration_error(test.y, raw.predict(test))
    assert expected_calibration_error(test.y, calibrated.predict(test)) < raw_ece / 2
    platt = GBM(GBMConfig(n_estimators=150, calibration="platt")).fit(train, valid)
    assert expected_calibration_error(test.y, platt.predict(test)) < raw_ece


def test_treeshap_contributions_add_up_to_the_raw_score_and_name_the_signal() -> None:
    train, test = _examples(3000, 0), _examples(200, 3)
    model = GBM(GBMConfig(n_estimators=80)).fit(train)
    contrib = model.contributions(test)
    assert contrib.shape == (200, len(NAMES) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw(test), rtol=1e-6, atol=1e-6)
    strongest = np.abs(contrib[:, :-1]).mean(axis=0).argmax()
    assert NAMES[strongest] in ("recency_days", "n_cart_short")
    assert (
        np.abs(contrib[:, NAMES.index("noise")]).mean() < np.abs(contrib[:, strongest]).mean() / 3
    )
    sentences = reason_sentences(test, contrib, top=2)
    assert len(sentences) == 200 and all(len(s) <= 2 for s in sentences)
    first = sentences[0][0]
    assert first.endswith(f"{contrib[0, np.abs(contrib[0, :-1]).argmax()]:+.2f}")


def test_reasons_read_as_plain_words() -> None:
    assert (
        describe_feature("abandoned_carts_short", 4.0)
        == "4 carts in the last 7 days without a purchase"
    )
    assert describe_feature("recency_days", 2.5) == "last active 2.5 days ago"
    assert describe_feature("purchase_recency_days", float("nan")) == "no purchase yet"
    assert (
        describe_feature("n_cart_short", 2, short=timedelta(hours=12))
        == "2 add-to-carts in the last 12.0 h"
    )
    assert describe_feature("last_action", 3.0) == "last action was cart"
    assert describe_feature("unknown_feature", 1.5) == "unknown_feature = 1.5"


def test_gbm_saves_loads_and_refuses_misuse(tmp_path: Path) -> None:
    train, valid, test = _examples(2000, 0), _examples(1000, 1), _examples(300, 2)
    model = GBM(GBMConfig(n_estimators=30)).fit(train, valid)
    model.save(tmp_path / "gbm")
    loaded = GBM.load(tmp_path / "gbm")
    np.testing.assert_allclose(loaded.predict(test), model.predict(test))
    with pytest.raises(ArtifactError, match=r"no model\.txt there"):
        GBM.load(tmp_path / "nothing")
    with pytest.raises(NotFittedError, match="GBM is not fitted yet"):
        GBM().predict(test)
    other = Examples(test.keys, test.features[:, :2], NAMES[:2], test.y, test.observed)
    with pytest.raises(InputError, match="features differ from the model's"):
        model.predict(other)
    one_class = Examples(train.keys, train.features, NAMES, np.zeros(len(train)), train.observed)
    with pytest.raises(InputError, match="one class only"):
        GBM().fit(one_class)
    tweedie = GBMConfig(kind="regression", objective="tweedie")
    with pytest.raises(InputError, match=r"not all zero; got 0 positive of 2000 \(no prices"):
        GBM(tweedie).fit(one_class)


def _next_actions(n: int, seed: int) -> Examples:
    """Next action = a fixed function of the last action (view->cart->purchase->view ...)."""
    rng = np.random.default_rng(seed)
    base = _examples(n, seed)
    last = rng.choice([0, 3, 5], n)
    follow = {0: 3, 3: 5, 5: 0}
    y = np.array([follow[v] if rng.random() < 0.9 else 1 for v in last])
    features = base.features.copy()
    features[:, NAMES.index("last_action")] = last
    return Examples(base.keys, features, NAMES, y.astype(np.int64), base.observed)


def test_markov_over_actions_finds_a_transition_the_prior_cannot() -> None:
    train, test = _next_actions(3000, 0), _next_actions(1000, 1)
    prior = MostFrequentAction().fit(train).predict(test)
    markov = ActionMarkov().fit(train).predict(test)
    repeat = RepeatLastAction().fit(train).predict(test)
    np.testing.assert_allclose(markov.sum(axis=1), 1.0)
    np.testing.assert_allclose(repeat.sum(axis=1), 1.0)
    assert macro_f1(test.y, markov.argmax(axis=1)) > macro_f1(test.y, prior.argmax(axis=1)) + 0.3
    gbm = GBM(GBMConfig(kind="multiclass", n_estimators=40)).fit(train)
    probabilities = gbm.predict(test)
    assert probabilities.shape == (1000, len(ACTION_NAMES))  # one column per action
    assert (
        macro_f1(test.y, probabilities.argmax(axis=1))
        >= macro_f1(test.y, markov.argmax(axis=1)) - 0.02
    )
    assert gbm.contributions(test).shape == (1000, len(NAMES) + 1)


def test_median_gap_caps_at_the_horizon_and_falls_back() -> None:
    test = _examples(4, 0)
    test.features[:, NAMES.index("median_gap_seconds")] = [10.0, 1e9, np.nan, 100.0]
    test.features[:, NAMES.index("recency_days")] = [0.0, 0.0, 0.0, 50 / 86_400]
    train = Examples(
        test.keys, test.features, NAMES, np.array([5.0, 7.0, 9.0, 11.0]), test.observed
    )
    horizon = timedelta(days=1)
    plain = MedianGap(horizon).fit(train).predict(test)
    np.testing.assert_allclose(plain, [10.0, 86_400.0, 8.0, 100.0])
    remaining = MedianGap(horizon, remaining=True).fit(train).predict(test)
    assert remaining[3] == pytest.approx(50.0)


def test_leaderboard_needs_baselines_and_chooses_on_validation() -> None:
    task = TASKS["churn"]
    valid, test = _examples(800, 1), _examples(800, 2)
    perfect_valid = valid.y + 0.0
    with pytest.raises(InputError, match="needs its baselines beside the models"):
        evaluate_predictions(task, valid, test, {"m": valid.y}, {"m": test.y}, set())
    rule = FeatureRule("recency_days").fit(valid)
    board = evaluate_predictions(
        task,
        valid,
        test,
        {"oracle": perfect_valid, "rule": rule.predict(valid), "noise": np.full(800, 0.5)},
        {"oracle": test.y * 0.9 + 0.05, "rule": rule.predict(test), "noise": np.full(800, 0.5)},
        {"rule", "noise"},
    )
    assert board.best_baseline == "rule"
    assert board.chosen == "oracle"
    oracle = next(r for r in board.rows if r["model"] == "oracle")
    assert oracle["test"]["roc_auc"] == 1.0
    assert oracle["vs_best_baseline"]["diff"] > 0
    assert set(board.curves["oracle"]) == {"reliability", "gains"}
    assert board.to_dict()["rows"][0]["model"] == "oracle"


def test_every_task_has_baselines() -> None:
    for task in TASKS.values():
        assert baselines_for(task, LabelConfig())


def test_a_baseline_that_cannot_fit_is_left_out_and_named() -> None:
    from shopseq.users.train import train_task

    train, valid, test = _examples(1500, 0), _examples(600, 1), _examples(600, 2)
    trained = train_task(TASKS["churn"], train, valid, test, LabelConfig())
    # The examples have no purchase features: BG/NBD cannot fit; the inactivity rule can.
    assert "bgnbd_p_alive" in trained.leaderboard.skipped_baselines
    assert "no feature 'n_purchase_days'" in trained.leaderboard.skipped_baselines["bgnbd_p_alive"]
    assert {r["model"] for r in trained.leaderboard.rows} == {"lightgbm", "inactive_days"}


def test_the_tree_size_is_chosen_on_the_validation_snapshot_alone() -> None:
    from shopseq.users.train import train_task

    # Few positives: big trees fit the noise. Each size is ranked on validation; the test
    # snapshot, drawn from another seed, cannot change the choice.
    train, valid = _examples(1500, 0, shift=-6.0), _examples(1500, 1, shift=-6.0)
    assert 20 < train.y.sum() < 200
    tests = [_examples(1500, seed, shift=-6.0) for seed in (2, 3)]
    config = GBMConfig(calibration="none", min_child_samples=5)
    chosen = [
        train_task(
            TASKS["churn"], train, valid, test, LabelConfig(), gbm=config, gbm_leaves=(63, 7, 2)
        )
        for test in tests
    ]
    search = chosen[0].gbm_search
    assert set(search) == {63, 7, 2} and chosen[1].gbm_search == search
    best = max(search, key=lambda k: search[k])
    assert chosen[0].gbm.config.num_leaves == chosen[1].gbm.config.num_leaves == best
    for leaves, auc in search.items():  # what each size scored on validation, refitted here
        model = GBM(config.model_copy(update={"num_leaves": leaves})).fit(train, valid)
        assert roc_auc(valid.y, model.raw(valid)) == pytest.approx(auc)
    assert len(set(search.values())) > 1  # the sizes differ: the choice is not a tie
    # One size, or a task that is not binary: nothing is searched.
    single = train_task(TASKS["churn"], train, valid, tests[0], LabelConfig(), gbm=config,
                        gbm_leaves=(7,))  # fmt: skip
    assert single.gbm_search == {} and single.gbm.config.num_leaves == 7
