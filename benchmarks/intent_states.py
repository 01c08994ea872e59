"""Do intent-state features raise session purchase-intent ROC-AUC? (issue 15 goal)

For each dataset with purchases: sessions are split in time (the 70 % that start first train, the
rest test). The HMM is fitted on the training sessions only. A case is a session with more than
``--prefix`` events and no purchase among its first ``--prefix`` events; the features see only
those first events, the label is "a purchase later in the session". Two classifiers are fitted on
the training cases: one on plain prefix features (counts of each symbol, distinct items, seconds
from first to last event), one on the same plus the state features of
``session_state_features`` (state shares, last state, posterior at the last event). Test ROC-AUC
with a paired bootstrap interval of the difference.

Example::

    PYTHONPATH=src nice -n 10 python benchmarks/intent_states.py --datasets rees46 taobao
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import ibis
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shopseq.analyze.result import event_order
from shopseq.analyze.states import (
    StatesConfig,
    encode_symbols,
    intent_states,
    session_state_features,
)
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PREPARED_TABLE, PrepareConfig, prepare_events
from shopseq.schema import ACTION, SESSION_ID, TS
from shopseq.store import open_store

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SHOPSEQ_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {
    "rees46": ("rees46", "rees46-multi-category-store/2019-Oct_first17434rows.csv"),
    "taobao": ("taobao", "taobao-userbehavior/UserBehavior_timeslice_110k.csv"),
}


def _plain_features(prefix: ibis.Table, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    seqs = encode_symbols(prefix, "session", "action_context")
    n = len(seqs)
    seq = np.repeat(np.arange(n), seqs.lengths)
    out = {"session_id": np.asarray(seqs.owner_ids.to_pylist(), dtype=object)}
    for j, name in enumerate(seqs.names):
        out[f"n_{name}"] = np.bincount(seq[seqs.symbols == j], minlength=n).astype(float)
    for name in names:  # symbols absent from the prefixes are all-zero columns
        out.setdefault(f"n_{name}", np.zeros(n))
    stats = (
        prefix.group_by(SESSION_ID)
        .aggregate(
            items=prefix.item_id.nunique(),
            seconds=(prefix[TS].max().epoch_seconds() - prefix[TS].min().epoch_seconds()).cast(
                "float64"
            ),
        )
        .to_pyarrow()
        .to_pydict()
    )
    where = {s: i for i, s in enumerate(stats[SESSION_ID])}
    rows = [where[s] for s in out["session_id"]]
    out["n_items"] = np.asarray(stats["items"], dtype=float)[rows]
    out["seconds"] = np.asarray(stats["seconds"], dtype=float)[rows]
    return out


def _auc_pair(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(1000):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(roc_auc_score(y[idx], b[idx]) - roc_auc_score(y[idx], a[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return roc_auc_score(y, b) - roc_auc_score(y, a), float(lo), float(hi)


def run(name: str, prefix_len: int, seed: int) -> None:
    layout, path = DATASETS[name]
    with open_store(None, threads=2) as store:
        ingest_files([DATA / path], IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store)
        prepare_events(store, PrepareConfig())
        events = store.table(PREPARED_TABLE)
        window = ibis.window(group_by=events[SESSION_ID], order_by=event_order(events))
        events = events.mutate(
            _pos=ibis.row_number().over(window),
            _start=events[TS].min().over(ibis.window(group_by=events[SESSION_ID])),
        )
        starts = events.group_by(SESSION_ID).aggregate(start=events._start.min())
        cut = starts.start.quantile(0.7).to_pyarrow().as_py()
        train_sessions = events.filter(events._start < cut)
        started = time.perf_counter()
        model = intent_states(train_sessions.drop("_pos", "_start"), StatesConfig(seed=seed)).model
        fit_seconds = time.perf_counter() - started
        early_purchase = (
            events.filter((events._pos < prefix_len) & (events[ACTION] == "purchase"))
            .select(SESSION_ID)
            .distinct()
        )
        long_enough = (
            events.group_by(SESSION_ID)
            .aggregate(n=events.count(), bought=(events[ACTION] == "purchase").any())
            .filter(lambda t: t.n > prefix_len)
        )
        cases = long_enough.anti_join(early_purchase, SESSION_ID)
        labels = {
            r[SESSION_ID]: r["bought"]
            for r in cases.select(SESSION_ID, "bought").to_pyarrow().to_pylist()
        }
        prefix = events.filter(events._pos < prefix_len).semi_join(cases, SESSION_ID)
        split = {r[SESSION_ID]: r["start"] < cut for r in starts.to_pyarrow().to_pylist()}
        prefix_events = prefix.drop("_pos", "_start")
        plain = _plain_features(prefix_events, model.symbols)
        states = session_state_features(prefix_events, model).to_pydict()
        order = {s: i for i, s in enumerate(states["session_id"])}
        rows = [order[s] for s in plain["session_id"]]
        k = model.n_states
        state_cols = [np.asarray(states[f"state_share_{i}"])[rows] for i in range(k)]
        state_cols += [np.asarray(states[f"state_prob_{i}"])[rows] for i in range(k)]
        last = np.asarray(states["last_state"])[rows]
        state_cols += [(last == i).astype(float) for i in range(k)]
    base_names = sorted(c for c in plain if c != "session_id")
    x_plain = np.column_stack([np.log1p(plain[c]) for c in base_names])
    x_states = np.column_stack([x_plain, *state_cols])
    y = np.array([labels[s] for s in plain["session_id"]], dtype=int)
    is_train = np.array([split[s] for s in plain["session_id"]])
    print(
        f"[{name}] HMM fitted on training sessions in {fit_seconds:.1f}s: {k} states "
        f"{model.names}; cases: {len(y):,} ({is_train.sum():,} train, {(~is_train).sum():,} test), "
        f"positives {y[is_train].sum()} / {y[~is_train].sum()}; prefix {prefix_len} events",
        flush=True,
    )
    for label, make in (
        ("logistic", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("gbm", lambda: HistGradientBoostingClassifier(max_iter=200, random_state=seed)),
    ):
        scores = []
        for x in (x_plain, x_states):
            clf = make().fit(x[is_train], y[is_train])
            scores.append(clf.predict_proba(x[~is_train])[:, 1])
        yt = y[~is_train]
        diff, lo, hi = _auc_pair(yt, scores[0], scores[1], seed)
        print(
            f"[{name}] {label}: ROC-AUC plain {roc_auc_score(yt, scores[0]):.4f}, "
            f"+ states {roc_auc_score(yt, scores[1]):.4f} (difference {diff:+.4f}, "
            f"95 % bootstrap [{lo:+.4f}, {hi:+.4f}])",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--prefix", type=int, default=2, help="events the features see")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.datasets:
        run(name, args.prefix, args.seed)


if __name__ == "__main__":
    main()
