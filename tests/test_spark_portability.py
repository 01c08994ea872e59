"""Every table stage gives the same results on DuckDB and on Spark (local[2], one shared session).

~10 k generated events plus edge cases (exact duplicates, sub-second repeats, ties, nulls) go
through prepare, sequences and splits, per-user features, every analysis and the forecast series
on both engines. On Spark the events start as Parquet written by DuckDB (``export_parquet``),
results land as Parquet partitioned by date, and DuckDB reads them back on one machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shopseq.analyze import (
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    RetentionConfig,
    RuleConfig,
    SegmentConfig,
    TransitionConfig,
    association_rules,
    funnel,
    mine_patterns,
    paths,
    retention,
    segment_users,
    transitions,
)
from shopseq.cli import run
from shopseq.forecast.series import Freq, Metric, SeriesConfig, build_series
from shopseq.prepare import (
    PREPARED_TABLE,
    BotFilterConfig,
    DedupeConfig,
    PrepareConfig,
    prepare_events,
    prepare_table,
)
from shopseq.runs.engine import SparkConfig, spark_session
from shopseq.schema import STORED_SCHEMA
from shopseq.sequences import SequenceConfig, fetch_events, leave_last_out, time_cut, user_features
from shopseq.store import PARTITION_COLUMN, Store, open_spark_store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # All Spark tests on one xdist worker (--dist loadgroup): one session for all of them.
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the garbage collector.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

CONFIG = PrepareConfig(
    dedupe=DedupeConfig(repeat_window_seconds=1),
    bots=BotFilterConfig(max_events_per_minute=40),
)


def _edge_case_events() -> pa.Table:
    """~10 k generated events plus duplicates, sub-second gaps, ties and nulls."""
    events = generate_events(GeneratorConfig(n_events=10_000, n_days=14, seed=11))
    n = events.num_rows
    first = events.slice(0, 200)
    # Exact duplicates, the same events 400 ms later (a sub-second repeat), and a tie.
    later = pc.add(first.column("ts"), pa.scalar(timedelta(milliseconds=400)))
    shifted = first.set_column(3, first.schema.field("ts"), later.cast(pa.timestamp("us")))
    nulls = (
        first.slice(0, 50)
        .set_column(5, first.schema.field("category_id"), pa.nulls(50, pa.string()))
        .set_column(6, first.schema.field("price"), pa.nulls(50, pa.float64()))
    )
    rows = pa.concat_tables([events, first, shifted.cast(events.schema), nulls])
    lineage = {
        "source_file_id": pa.array([1] * rows.num_rows, pa.int32()),
        "source_row": pa.array(range(2, rows.num_rows + 2), pa.int64()),
    }
    for name, column in lineage.items():
        rows = rows.append_column(name, column)
    assert rows.num_rows == n + 450
    return rows.cast(STORED_SCHEMA)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-output")


@pytest.fixture(scope="module")
def duck() -> Iterator[Store]:
    """A DuckDB store with the edge-case events, prepared."""
    with open_store(None, threads=2) as store:
        store.write_arrow("events", _edge_case_events())
        yield store


@pytest.fixture(scope="module")
def spark(output: Path, duck: Store) -> Iterator[Store]:
    """The Spark store over ``output``, its events exported there from the DuckDB store."""
    pytest.importorskip("pyspark.sql", reason="pyspark is not installed (extra 'spark')")
    duck.export_parquet("events", output)
    config = SparkConfig(
        master="local[2]",
        app_name="shopseq-tests",
        output=str(output),
        conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
    )
    with spark_session(config) as session:
        yield open_spark_store(session, output)


@pytest.fixture(scope="module")
def reports(duck: Store, spark: Store) -> tuple[Any, Any]:
    """``prepare_events`` (the public path) on both engines."""
    return prepare_events(duck, CONFIG), prepare_events(spark, CONFIG)


def _canonical(table: pa.Table) -> list[dict]:
    rows = table.select([f.name for f in STORED_SCHEMA]).to_pylist()
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=None) if row["ts"] else None
        if row["price"] is not None:
            row["price"] = round(row["price"], 9)
    return sorted(rows, key=lambda r: (r["source_file_id"], r["source_row"]))


def _rounded(value: Any) -> Any:
    """``value`` with floats rounded to 9 significant digits (last-bit summation noise)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _rounded(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist())
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.9g}")
    return value


def _sorted_rows(table: pa.Table, key: str) -> list[dict]:
    return sorted(_rounded(table.to_pylist()), key=lambda r: str(r[key]))


def test_prepare_table_gives_the_same_events_on_duckdb_and_spark(duck: Store, spark: Store) -> None:
    events = _edge_case_events()
    on_duckdb = _canonical(prepare_table(duck.table("events"), CONFIG).to_pyarrow())
    on_spark = _canonical(prepare_table(spark.table("events"), CONFIG).to_pyarrow())
    assert len(on_duckdb) < events.num_rows  # the duplicates and repeats were removed
    assert on_duckdb == on_spark


def test_prepare_events_on_spark_lands_as_parquet_that_one_machine_reads(
    duck: Store, spark: Store, reports: tuple[Any, Any], output: Path
) -> None:
    on_duckdb, on_spark = reports
    assert dataclasses.replace(on_duckdb, seconds={}) == dataclasses.replace(on_spark, seconds={})
    assert on_duckdb.exact_duplicates > 0 and on_duckdb.repeats > 0
    days = sorted(p.name for p in (output / PREPARED_TABLE).iterdir() if p.is_dir())
    assert days and all(d.startswith(f"{PARTITION_COLUMN}=") for d in days)
    with open_store(output, read_only=True) as local:
        assert local.table(PREPARED_TABLE).schema() == duck.table(PREPARED_TABLE).schema()
        read_back = _canonical(local.table(PREPARED_TABLE).to_pyarrow())
    assert read_back == _canonical(duck.table(PREPARED_TABLE).to_pyarrow())
    assert read_back == _canonical(spark.table(PREPARED_TABLE).to_pyarrow())


@pytest.mark.parametrize("by", ["user", "session"])
def test_sequences_and_splits_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], by: str
) -> None:
    config = SequenceConfig(by=by, collapse_repeats=by == "session")
    events = [fetch_events(s.table(PREPARED_TABLE), config) for s in (duck, spark)]
    for field in ("owner_ids", "item_ids", "category_ids", "actions", "ts"):
        a, b = (getattr(e, field) for e in events)
        assert (a.to_pylist() if isinstance(a, pa.Array) else a.tolist()) == (
            b.to_pylist() if isinstance(b, pa.Array) else b.tolist()
        ), field
    cut = datetime(2024, 1, 11)
    for split_of in (leave_last_out, lambda e: time_cut(e, cut, cut - timedelta(days=2))):
        a, b = (split_of(e) for e in events)
        assert a.report == b.report
        assert a.item_vocab.ids.to_pylist() == b.item_vocab.ids.to_pylist()
        for part in ("items", "offsets", "ts"):
            assert np.array_equal(getattr(a.train, part), getattr(b.train, part))
        assert np.array_equal(a.test.targets, b.test.targets)


def test_user_features_are_the_same_and_land_as_parquet(
    duck: Store, spark: Store, reports: tuple[Any, Any], output: Path
) -> None:
    as_of = datetime(2024, 1, 10, 12)
    on_duckdb = _sorted_rows(
        user_features(duck.table(PREPARED_TABLE), as_of).to_pyarrow(), "user_id"
    )
    written = spark.materialize("user_features", user_features(spark.table(PREPARED_TABLE), as_of))
    assert _sorted_rows(written.to_pyarrow(), "user_id") == on_duckdb
    with open_store(output, read_only=True) as local:
        assert _sorted_rows(local.table("user_features").to_pyarrow(), "user_id") == on_duckdb
    assert len(on_duckdb) > 100


ANALYSES = {
    "funnel": lambda e: funnel(e, FunnelConfig()),
    "paths": lambda e: paths(e, PathsConfig()),
    "transitions": lambda e: transitions(e, TransitionConfig()),
    "patterns": lambda e: mine_patterns(e, PatternConfig(min_sessions=3)),
    "rules": lambda e: association_rules(e, RuleConfig(level="category", min_baskets=3)),
    "segments": pytest.param(
        lambda e: segment_users(e, SegmentConfig())
    ),  # segments read recency_days from user_features
    "retention": lambda e: retention(e, RetentionConfig(period="week")),
}


@pytest.mark.parametrize(
    "analysis", [ANALYSES[name] for name in sorted(ANALYSES)], ids=sorted(ANALYSES)
)
def test_analyses_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], analysis: Any
) -> None:
    on_duckdb = _rounded(analysis(duck.table(PREPARED_TABLE)).to_dict())
    on_spark = _rounded(analysis(spark.table(PREPARED_TABLE)).to_dict())
    assert on_duckdb == on_spark


@pytest.mark.parametrize(
    "config",
    [
        SeriesConfig(metric=Metric.PURCHASES, freq=Freq.DAY),
        SeriesConfig(metric=Metric.VIEWS, freq=Freq.HOUR, top_categories=3),
        SeriesConfig(metric=Metric.REVENUE, freq=Freq.DAY, top_categories=5),
    ],
    ids=["purchases-D", "views-h", "revenue-D"],
)
def test_forecast_series_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], config: SeriesConfig
) -> None:
    a, b = (build_series(s.table(PREPARED_TABLE), config) for s in (duck, spark))
    assert a.panel.ids == b.panel.ids
    assert np.array_equal(a.panel.ds, b.panel.ds)
    np.testing.assert_allclose(a.panel.y, b.panel.y, rtol=1e-12, equal_nan=True)
    assert np.array_equal(a.panel.gap, b.panel.gap)
    assert a.report == b.report


def test_the_cli_runs_the_stages_on_spark(
    spark: Store, reports: tuple[Any, Any], output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process the running session is reused (and left running) by --engine spark.
    flags = ["--engine", "spark", "--spark-master", "local[2]", "--spark-output", str(output)]
    flags += ["--spark-conf", "spark.sql.shuffle.partitions=4"]
    assert run(["prepare", *flags]) == 0
    assert "events out" in capsys.readouterr().out
    assert run(["analyze", *flags, "transitions", "--json"]) == 0
    on_spark = json.loads(capsys.readouterr().out)
    assert run(["analyze", "transitions", "--store", str(output), "--json"]) == 0  # Parquet, here
    assert json.loads(capsys.readouterr().out) == on_spark
    assert run(["sequences", *flags, "--protocol", "time-cut", "--test-days", "2"]) == 0
    assert (output / "vocab_item").is_dir()  # the vocabularies landed as Parquet too
    assert spark.spark_session.getActiveSession() is not None
