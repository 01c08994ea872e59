"""Recommend latency of SASRec and GRU4Rec over a 100k-item catalogue, once the model is loaded.

Each model is fitted for one epoch on random sequences over 100,000 items (the weights do not
change the cost), then ``recommend(history, k=10)`` is timed for one history (median of repeats) and
for a batch of 256 histories. One torch thread. Example::

    PYTHONPATH=src nice -n 10 python benchmarks/neural_latency.py
"""

from __future__ import annotations

import time

import numpy as np

from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.nextitem.sasrec import SASRec, SASRecConfig
from shopseq.sequences import Sequences

N_ITEMS = 100_001


def _median_ms(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    train = Sequences.from_lists([rng.integers(1, N_ITEMS, size=20) for _ in range(2000)])
    histories = Sequences.from_lists([rng.integers(1, N_ITEMS, size=30) for _ in range(256)])
    one = histories.subset(np.array([0]))
    models = {
        "sasrec (d=64, 2 blocks, max_len 50)": SASRec(SASRecConfig(loss="sampled_ce", n_epochs=1)),
        "gru4rec (100 units)": GRU4Rec(GRU4RecConfig(n_epochs=1)),
        "gru4rec (512 units)": GRU4Rec(GRU4RecConfig(layers=(512,), n_epochs=1)),
    }
    print("| model | one history, median ms | batch of 256, ms per history |")
    print("|---|---|---|")
    for name, model in models.items():
        model.fit(train, N_ITEMS)
        model.recommend(one, 10)  # warm-up
        single = _median_ms(lambda m=model: m.recommend(one, 10), 50)
        batch = _median_ms(lambda m=model: m.recommend(histories, 10), 5) / len(histories)
        print(f"| {name} | {single:.2f} | {batch:.3f} |", flush=True)


if __name__ == "__main__":
    main()
