"""sample_cases: the one seeded case sample of early stopping, the fusion and the leaderboard."""

from __future__ import annotations

import numpy as np

from shopseq.nextitem.evaluation import sample_cases
from shopseq.sequences import EvalCases, Sequences


def _cases(n: int) -> EvalCases:
    seqs = Sequences.from_lists([[1, 2 + i] for i in range(n)])
    seq_index = np.arange(n)
    position = np.ones(n, dtype=np.int64)
    return EvalCases(seqs, seq_index, position, seqs.items[seqs.offsets[seq_index] + 1])


def test_a_seed_draws_the_same_cases_in_their_order() -> None:
    cases = _cases(50)
    a, b = sample_cases(cases, 10, seed=3), sample_cases(cases, 10, seed=3)
    assert len(a) == 10
    assert np.array_equal(a.targets, b.targets)
    assert np.all(np.diff(a.targets) > 0)  # targets rise with the case number: order kept
    assert not np.array_equal(a.targets, sample_cases(cases, 10, seed=4).targets)


def test_no_sample_or_a_larger_one_keeps_every_case() -> None:
    cases = _cases(5)
    for n in (None, 5, 8):
        assert sample_cases(cases, n, seed=0) is cases
