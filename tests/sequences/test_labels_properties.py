"""No feature reads an event at or after its cut-off, for every task.

The check: build every task's examples on a log, then change, drop, move and add events at or
after the cut-off (the future) and build them again. Every feature of every example must be
identical, and so must the set of examples; only labels may change. A second test shows the check
has teeth: the same changes do change labels.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from events_factory import BASE, event_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.schema import PRICE, TS, Action
from shopseq.sequences.features import FeatureConfig
from shopseq.sequences.labels import (
    LABEL_COLUMNS,
    NEXT_EVENT_OBSERVED,
    SESSION_LABEL_COLUMNS,
    TASK_LABELS,
    LabelConfig,
    SessionIntentConfig,
    session_intent_examples,
    user_examples,
)
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events

HOUR, DAY = 3600, 86_400
N_DAYS = 12
ACTIONS = [a.value for a in Action]
LABELS = LabelConfig(
    next_event_horizon=timedelta(days=2),
    purchase_horizon=timedelta(days=2),
    churn_horizon=timedelta(days=3),
    spend_horizon=timedelta(days=3),
)
FEATURES = (FeatureConfig(), FeatureConfig(lookback=timedelta(days=5)))
POSITIONS = SessionIntentConfig(positions=(1, 2, 3))

# Times cluster in a few sessions per day (so sessions have several events) plus ties.
times = st.builds(
    lambda day, slot, minute: day * DAY + slot * 6 * HOUR + minute * 60,
    st.integers(0, N_DAYS - 1),
    st.integers(0, 3),
    st.integers(0, 20),
)
event = st.tuples(
    st.sampled_from(["u0", "u1", "u2", "u3"]),
    st.sampled_from(["i0", "i1", "i2", "i3", "i4"]),
    st.sampled_from(ACTIONS),
    times,
    st.sampled_from(["c0", "c1", None]),
    st.one_of(st.none(), st.sampled_from([1.0, 2.5, 10.0, 99.0])),
    st.one_of(st.none(), st.integers(1, 3)),
)


def _future_change(rows: list[tuple], cut_s: int, data: st.DataObject) -> list[tuple]:
    """Drop, move and rewrite events at or after the cut-off, and add new ones there."""
    changed = []
    for row in rows:
        if row[3] < cut_s:
            changed.append(row)
            continue
        what = data.draw(st.sampled_from(["keep", "drop", "rewrite", "move"]))
        if what == "keep":
            changed.append(row)
        elif what == "rewrite":
            changed.append(
                (row[0], data.draw(st.sampled_from(["i0", "i9"])), data.draw(st.sampled_from(
                    ACTIONS)), row[3], "c9", 1234.0, 7)
            )  # fmt: skip
        elif what == "move":
            changed.append((*row[:3], data.draw(st.integers(cut_s, N_DAYS * DAY)), *row[4:]))
    extra = data.draw(st.lists(event, max_size=8))
    changed += [(*r[:3], cut_s + r[3] % (N_DAYS * DAY - cut_s + 1), *r[4:]) for r in extra]
    return changed


def _rows(table: pa.Table, keys: tuple[str, ...], drop: tuple[str, ...]) -> dict[tuple, dict]:
    out = {}
    for row in table.to_pylist():
        out[tuple(row[k] for k in keys)] = {c: v for c, v in row.items() if c not in drop}
    return out


def _same(a: dict[tuple, dict], b: dict[tuple, dict], *, same_examples: bool = True) -> None:
    if same_examples:
        assert a.keys() == b.keys()
    for key, row in a.items():
        if key not in b:
            continue
        for column, value in row.items():
            other = b[key][column]
            if isinstance(value, float) and isinstance(other, float):
                assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-9) or (
                    math.isnan(value) and math.isnan(other)
                ), (key, column, value, other)
            else:
                assert value == other, (key, column, value, other)


def _kth_event_times(events: pa.Table) -> dict[tuple[str, int], object]:
    order = sorted(
        events.select(["session_id", "ts", "source_row"]).to_pylist(),
        key=lambda r: (r["session_id"], r["ts"], r["source_row"]),
    )
    out: dict[tuple[str, int], object] = {}
    position: dict[str, int] = {}
    for row in order:
        k = position.get(row["session_id"], 0) + 1
        position[row["session_id"]] = k
        out[(row["session_id"], k)] = row["ts"]
    return out


def _task_tables(store, rows: list[tuple], cut, features: FeatureConfig) -> dict[str, pa.Table]:
    """Each task's examples as its model would read them: features plus its label."""
    events = sessionize(store.write_arrow("events", event_rows(rows)), SessionizeConfig())
    owners = user_examples(events, cut, LABELS, features).to_pyarrow()
    sessions = session_intent_examples(events, POSITIONS).to_pyarrow()
    # A session example is "before the cut-off" when its k-th event is; that moment is found
    # here from the raw events, independently of the code under test.
    kth = _kth_event_times(events.to_pyarrow())
    moments = [kth[(r["session_id"], r["k"])] for r in sessions.to_pylist()]
    assert sessions.column("cutoff").to_pylist() == moments
    sessions = sessions.filter(pa.array([m < cut for m in moments], pa.bool_()))
    tables = {}
    for task, label in TASK_LABELS.items():
        if task == "session-intent":
            tables[task] = sessions
        elif task == "next-action":  # trained on owners whose next event is observed
            tables[task] = owners.filter(pc.field(NEXT_EVENT_OBSERVED))
        else:
            tables[task] = owners
        assert label in tables[task].schema.names
    return tables


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    rows=st.lists(event, min_size=1, max_size=50),
    cut_s=times.filter(lambda s: s >= 2 * DAY),  # on the events' grid, so ties with it happen
    feature_choice=st.integers(0, len(FEATURES) - 1),
    data=st.data(),
)
def test_no_feature_reads_an_event_at_or_after_its_cutoff(
    rows: list[tuple], cut_s: int, feature_choice: int, data: st.DataObject
) -> None:
    cut = BASE + timedelta(seconds=cut_s)
    future = _future_change(rows, cut_s, data)
    features = FEATURES[feature_choice]
    with open_store(None, threads=1) as store:
        before = _task_tables(store, rows, cut, features)
        after = _task_tables(store, future, cut, features)
    for task in TASK_LABELS:
        if task == "session-intent":
            keys, drop = ("session_id", "k"), SESSION_LABEL_COLUMNS
        else:
            keys, drop = ("user_id",), LABEL_COLUMNS
        # Next action trains only where a next event was observed (a label), so its set of
        # examples may change with the future; the features of the owners in both may not.
        _same(
            _rows(before[task], keys, drop),
            _rows(after[task], keys, drop),
            same_examples=task != "next-action",
        )


def _generated() -> pa.Table:
    events = generate_events(GeneratorConfig(n_events=6_000, n_days=40, seed=5))
    n = events.num_rows
    return events.append_column("source_file_id", pa.array(np.ones(n, np.int32))).append_column(
        "source_row", pa.array(np.arange(n, dtype=np.int64))
    )


def test_shuffling_and_changing_future_events_changes_no_feature_but_changes_labels() -> None:
    events = _generated()
    ts = events.column(TS).to_numpy().astype("datetime64[s]").astype(np.int64)
    cut_s = int(np.quantile(ts, 0.6))
    cut = np.datetime64(cut_s, "s").astype("datetime64[us]").item()
    future = ts >= cut_s
    rng = np.random.default_rng(0)
    # Shuffle the future's timestamps among its events, and double their prices.
    new_ts = ts.copy()
    new_ts[future] = rng.permutation(ts[future])
    prices = events.column(PRICE).to_numpy(zero_copy_only=False).astype(np.float64)
    prices[future] = prices[future] * 2
    changed = events.set_column(
        events.schema.get_field_index(TS),
        TS,
        pa.array(new_ts.astype("datetime64[s]").astype("datetime64[us]")),
    ).set_column(
        events.schema.get_field_index(PRICE),
        PRICE,
        pa.array(prices, pa.float64(), mask=np.isnan(prices)),
    )
    labels = LabelConfig(
        next_event_horizon=timedelta(days=5),
        purchase_horizon=timedelta(days=5),
        churn_horizon=timedelta(days=7),
        spend_horizon=timedelta(days=7),
    )
    keys, drop = ("user_id",), LABEL_COLUMNS
    with open_store(None, threads=1) as store:
        tables = []
        for table in (events, changed):
            stored = sessionize(store.write_arrow("events", table), SessionizeConfig())
            tables.append(user_examples(stored, cut, labels).to_pyarrow())
    original, shuffled = (_rows(t, keys, ()) for t in tables)
    _same(_rows(tables[0], keys, drop), _rows(tables[1], keys, drop))
    assert len(original) > 100

    # The check has teeth: the labels do read the future, so they moved.
    def moved(label: str) -> int:
        return sum(original[k][label] != shuffled[k][label] for k in original)

    assert moved("next_event_seconds") > len(original) // 10
    assert moved("spend") > 0
