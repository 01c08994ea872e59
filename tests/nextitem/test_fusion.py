"""Score fusion: probabilities, the weight chosen on validation, the parts alone at 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest

from shopseq.errors import ConfigError
from shopseq.metrics.ranking import target_ranks
from shopseq.nextitem.baselines import MarkovChain
from shopseq.nextitem.evaluation import validation_ndcg
from shopseq.nextitem.fusion import FusionConfig, ScoreFusion, fusion_probabilities
from shopseq.nextitem.sasrec import SASRec, SASRecConfig
from shopseq.runs.nextitem import fit_model, model_config
from shopseq.runtime import TorchRuntime
from shopseq.sequences import EvalCases, Sequences

from .test_contract import N_ITEMS, chain_cases, chain_data

TINY_SASREC = SASRecConfig(
    max_len=8, hidden_size=16, n_blocks=1, lr=1e-2, batch_size=32, n_epochs=3, patience=None
)


def _noisy_cases(seed: int = 1) -> EvalCases:
    """Validation cases from fresh chain sequences (noise first, so both parts err sometimes)."""
    seqs = chain_data(60, seed=seed)
    n = len(seqs)
    seq_index = np.repeat(np.arange(n), 3)
    position = np.tile([1, 2, 3], n)
    targets = seqs.items[seqs.offsets[seq_index] + position]
    return EvalCases(seqs, seq_index, position, targets)


def test_probabilities_sum_to_one_and_keep_each_parts_order() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6)).astype(np.float32) * 20  # large: exp would overflow unshifted
    logits[:, 0] = -np.inf
    partner = rng.random((4, 6)).astype(np.float32)
    partner[3, 1:] = 0.0  # a history the partner knows nothing about
    partner[:, 0] = -np.inf
    p_neural, p_partner = fusion_probabilities(logits, partner)
    np.testing.assert_allclose(p_neural.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p_partner[:3].sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(p_partner[3] == 0.0)
    assert np.all(p_neural[:, 0] == 0.0) and np.all(p_partner[:, 0] == 0.0)
    for row in range(3):
        assert np.array_equal(np.argsort(-p_neural[row, 1:]), np.argsort(-logits[row, 1:]))
        assert np.array_equal(np.argsort(-p_partner[row, 1:]), np.argsort(-partner[row, 1:]))


def test_weight_is_the_validation_best_and_its_ends_are_the_parts_alone() -> None:
    valid = _noisy_cases()
    fusion = ScoreFusion(FusionConfig(sasrec=TINY_SASREC, partner="markov", seed=2))
    fusion.fit(chain_data(), N_ITEMS, valid)
    scores = fusion.valid_scores_
    assert scores is not None and set(scores) == set(FusionConfig().weights)
    best = max(scores.values())
    assert fusion.weight_ == min(w for w, s in scores.items() if s == best)
    # The grid's ends are each part alone, scored independently of the fusion code.
    neural = SASRec(TINY_SASREC.model_copy(update={"seed": 2})).fit(chain_data(), N_ITEMS, valid)
    markov = MarkovChain().fit(chain_data(), N_ITEMS, valid)
    for weight, part in ((0.0, markov), (1.0, neural)):
        alone = validation_ndcg(part.score, valid, k=10, max_len=None, exclude_seen=True)
        assert scores[weight] == pytest.approx(alone, abs=1e-6)


def test_a_single_weight_ranks_exactly_as_that_part() -> None:
    histories = Sequences.from_lists([[1, 2], [4], [25, 26], [7, 8]])
    neural_only = ScoreFusion(FusionConfig(sasrec=TINY_SASREC, partner="markov", weights=(1.0,)))
    partner_only = ScoreFusion(FusionConfig(sasrec=TINY_SASREC, partner="markov", weights=(0.0,)))
    for fusion in (neural_only, partner_only):
        fusion.fit(chain_data(), N_ITEMS, chain_cases())
    targets = np.array([3, 5, 27, 9])
    neural, markov = neural_only.neural_, partner_only.partner_
    assert neural is not None and markov is not None
    np.testing.assert_array_equal(
        target_ranks(neural_only.score(histories), targets),
        target_ranks(neural.score(histories), targets),
    )
    np.testing.assert_array_equal(
        target_ranks(partner_only.score(histories), targets),
        target_ranks(markov.score(histories), targets),
    )


def test_without_validation_the_middle_weight_is_used() -> None:
    fusion = ScoreFusion(FusionConfig(sasrec=TINY_SASREC, partner="sknn"))
    fusion.fit(chain_data(), N_ITEMS, None)
    assert fusion.weight_ == 0.5 and fusion.valid_scores_ is None


def test_catalogue_settings_reach_the_neural_part() -> None:
    config = model_config("fusion", {"neural": "gru4rec", "partner": "itemknn"}, n_epochs=2, seed=3)
    assert isinstance(config, FusionConfig)
    neural = config.neural_config()
    assert (neural.n_epochs, neural.seed) == (2, 3)
    with pytest.raises(ConfigError, match="fusion"):
        model_config("fusion", {"weights": [0.5, 1.5]}, n_epochs=None, seed=0)


def test_the_chosen_weight_and_epochs_are_recorded_with_the_leaderboard_row() -> None:
    config = FusionConfig(sasrec=TINY_SASREC, partner="markov")
    fitted = fit_model("fusion", config, TorchRuntime(), chain_data(), N_ITEMS, _noisy_cases())
    assert isinstance(fitted.model, ScoreFusion)
    assert fitted.info["fusion_weight"] == fitted.model.weight_
    assert fitted.info["epochs"] == TINY_SASREC.n_epochs
