"""The same prepare expressions give the same events on DuckDB and on Spark (local[2])."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shopseq.prepare import BotFilterConfig, DedupeConfig, PrepareConfig, prepare_table
from shopseq.schema import STORED_SCHEMA
from shopseq.store import Store, open_spark_store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # py4j leaves its gateway sockets to the garbage collector.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def spark_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    pyspark = pytest.importorskip("pyspark.sql", reason="pyspark is not installed (extra 'spark')")
    session = (
        pyspark.SparkSession.builder.master("local[2]")
        .appName("shopseq-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    yield open_spark_store(session)
    session.stop()


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


def _canonical(table: pa.Table) -> list[dict]:
    rows = table.select([f.name for f in STORED_SCHEMA]).to_pylist()
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=None) if row["ts"] else None
        if row["price"] is not None:
            row["price"] = round(row["price"], 9)
    return sorted(rows, key=lambda r: (r["source_file_id"], r["source_row"]))


def test_prepare_gives_the_same_events_on_duckdb_and_spark(spark_store: Store) -> None:
    events = _edge_case_events()
    config = PrepareConfig(
        dedupe=DedupeConfig(repeat_window_seconds=1),
        bots=BotFilterConfig(max_events_per_minute=40),
    )
    with open_store(None, threads=2) as duck:
        duck_events = duck.write_arrow("events", events)
        on_duckdb = _canonical(prepare_table(duck_events, config).to_pyarrow())
    spark_events = spark_store.write_arrow("events", events)
    on_spark = _canonical(prepare_table(spark_events, config).to_pyarrow())
    assert len(on_duckdb) == len(on_spark)
    assert len(on_duckdb) < events.num_rows  # the duplicates and repeats were removed
    assert on_duckdb == on_spark
