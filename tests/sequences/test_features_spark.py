"""Features and labels give the same examples on DuckDB and on Spark (local[2])."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.schema import STORED_SCHEMA
from shopseq.sequences.labels import (
    LabelConfig,
    SessionIntentConfig,
    session_intent_examples,
    user_examples,
)
from shopseq.store import Store, open_spark_store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # With the other Spark tests on one xdist worker (--dist loadgroup): one session at a time.
    pytest.mark.xdist_group("spark"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def spark_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    pyspark = pytest.importorskip("pyspark.sql", reason="pyspark is not installed (extra 'spark')")
    session = (
        pyspark.SparkSession.builder.master("local[2]")
        .appName("shopseq-feature-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    yield open_spark_store(session)
    session.stop()


def _events() -> pa.Table:
    events = generate_events(GeneratorConfig(n_events=4_000, n_days=30, seed=3))
    n = events.num_rows
    # Sub-second times and ties: the per-second truncation must agree on both engines.
    ts = events.column("ts").to_numpy().astype("datetime64[us]")
    ts[::7] = ts[::7] + np.timedelta64(400_000, "us")
    events = events.set_column(3, "ts", pa.array(ts))
    events = events.append_column("source_file_id", pa.array(np.ones(n, np.int32)))
    events = events.append_column("source_row", pa.array(np.arange(n, dtype=np.int64)))
    return events.cast(STORED_SCHEMA)


def _canonical(table: pa.Table, keys: list[str]) -> list[tuple]:
    rows = []
    for row in table.to_pylist():
        clean = {}
        for name, value in row.items():
            if isinstance(value, float):
                value = None if math.isnan(value) else value
            elif hasattr(value, "tzinfo") and value is not None:
                value = value.replace(tzinfo=None)
            clean[name] = value
        rows.append(tuple(sorted(clean.items())))
    return sorted(rows, key=lambda r: tuple(str(dict(r)[k]) for k in keys))


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        other = dict(row_b)
        differ = {k: (v, other.get(k)) for k, v in row_a if not _close(v, other.get(k))}
        assert not differ, (dict(row_a).get("user_id"), differ)


def test_examples_are_the_same_on_duckdb_and_spark(spark_store: Store) -> None:
    events = _events()
    ts = events.column("ts").to_numpy()
    cut = ts[int(len(ts) * 0.7)].astype("datetime64[s]").item()
    labels = LabelConfig(
        next_event_horizon=timedelta(days=3),
        purchase_horizon=timedelta(days=3),
        churn_horizon=timedelta(days=5),
        spend_horizon=timedelta(days=5),
    )
    positions = SessionIntentConfig(positions=(1, 3))
    results = []
    with open_store(None, threads=2) as duck:
        for store in (duck, spark_store):
            stored = sessionize(store.write_arrow("events", events), SessionizeConfig())
            owners = user_examples(stored, cut, labels).to_pyarrow()
            sessions = session_intent_examples(stored, positions).to_pyarrow()
            results.append((owners, sessions))
    (duck_owners, duck_sessions), (spark_owners, spark_sessions) = results
    assert duck_owners.num_rows > 50
    assert set(duck_owners.schema.names) == set(spark_owners.schema.names)
    _assert_same(_canonical(duck_owners, ["user_id"]), _canonical(spark_owners, ["user_id"]))
    assert duck_sessions.num_rows > 100
    keys = ["session_id", "k"]
    _assert_same(_canonical(duck_sessions, keys), _canonical(spark_sessions, keys))
